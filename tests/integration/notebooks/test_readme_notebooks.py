"""The README's notebook walk-through, run exactly as printed with the `tsunami` command in a clean
shell (`bash -euo pipefail`: any failing step fails the test)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow


def readme_block(marker: str) -> str:
    text = (ROOT / "README.md").read_text("utf-8")
    match = re.search(rf"<!-- {marker}[^>]*-->\s*```sh\n(.*?)```", text, re.S)
    assert match, f"the README lost its {marker} block"
    return match.group(1)


def test_the_readme_notebook_walkthrough_runs_as_printed(tmp_path: Path) -> None:
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "TSUNAMI_HOME": str(tmp_path / ".tsunami"),
        "LANG": "C.UTF-8",
    }
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", readme_block("notebooks-walkthrough")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert '"exit_value": "42",' in done.stdout
    assert done.stdout.rstrip().endswith("same file")
    assert os.path.exists(tmp_path / "by_region.py")
