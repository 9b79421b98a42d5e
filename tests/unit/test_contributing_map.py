"""The map of the repository in CONTRIBUTING.md names every module, so it cannot drift from the tree."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "servicetsunami"


def map_text() -> str:
    text = (ROOT / "CONTRIBUTING.md").read_text()
    section = text.split("## Map", 1)[1]
    return section.split("```", 2)[1]  # the fenced tree


def modules() -> list[Path]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if path.name == "__init__.py" or relative.parts[:3] == ("store", "migrations", "versions"):
            continue  # packages are named by their folder; migrations by their number
        found.append(relative)
    return found


def test_every_module_and_folder_of_the_package_is_named_in_the_map() -> None:
    text = map_text()
    words = set(re.findall(r"[\w.]+/?", text))
    missing = []
    for relative in modules():
        if relative.name not in words and f"{relative.parent.name}/{relative.name}" not in text:
            missing.append(str(relative))
        missing += [f"{folder}/ (folder of {relative})" for folder in relative.parts[:-1] if f"{folder}/" not in words]
    assert sorted(set(missing)) == []


def test_every_migration_is_named_by_its_number() -> None:
    text = map_text()
    for path in (PACKAGE / "store" / "migrations" / "versions").glob("[0-9]*.py"):
        assert path.name[:4] in text, path.name
