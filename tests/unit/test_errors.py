"""The error tree drawn in ``errors.py`` is the tree the code defines: every error class of the
package, with its parent, code and HTTP status, and nothing else."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

import servicetsunami
from servicetsunami import errors
from servicetsunami.errors import EngineError, RateLimited, SourceError, TsunamiError

# Alembic runs these scripts itself (env.py needs its migration context); they define no errors.
NOT_IMPORTABLE = "servicetsunami.store.migrations"

# "    │   ├── QueryRefused              query_refused       400    the SQL guard said no"
ROW = re.compile(r"^(?P<indent>(?:[│ ]   )*(?:[├└]── )?)(?P<name>\w+)\s+(?P<code>\w+)\s+(?P<status>\d{3})\b")


def drawn_tree() -> dict[str, tuple[str | None, str, int]]:
    """Class name -> (parent name, code, HTTP status), as drawn in the module docstring."""
    doc = errors.__doc__ or ""
    drawing = doc.split("::\n\n", 1)[1].split("\n\n", 1)[0]  # the indented block after "::"
    rows: dict[str, tuple[str | None, str, int]] = {}
    parents: list[str] = []  # the chain of names above the current row
    for line in drawing.splitlines()[1:]:  # the first line is the header
        match = ROW.match(line.removeprefix("    "))
        assert match, f"a row of the drawing does not read as 'class code status': {line!r}"
        depth = len(match["indent"]) // 4
        del parents[depth:]
        name = match["name"]
        assert name not in rows, f"{name} is drawn twice"
        rows[name] = (parents[-1] if parents else None, match["code"], int(match["status"]))
        parents.append(name)
    return rows


def every_error_class() -> list[type[TsunamiError]]:
    for module in pkgutil.walk_packages(servicetsunami.__path__, "servicetsunami."):
        skipped = module.name == NOT_IMPORTABLE or module.name.startswith(NOT_IMPORTABLE + ".")
        if not skipped and not module.name.endswith(".__main__"):  # running it would start a program
            importlib.import_module(module.name)
    found: list[type[TsunamiError]] = [TsunamiError]
    for cls in found:  # grows while it is walked: breadth first through the subclasses
        found += [sub for sub in cls.__subclasses__() if sub not in found]
    return [cls for cls in found if cls.__module__.startswith("servicetsunami.")]


def test_every_error_class_of_the_package_is_drawn_with_its_parent_code_and_status() -> None:
    drawn = drawn_tree()
    classes = every_error_class()
    assert len(classes) > 20  # the walk found the modules, not only errors.py's own classes
    for cls in classes:
        assert cls.__name__ in drawn, f"{cls.__module__}.{cls.__name__} is missing from the tree in errors.py"
        parent, code, status = drawn[cls.__name__]
        bases = [b for b in cls.__bases__ if issubclass(b, TsunamiError)]
        assert [b.__name__ for b in bases] == ([parent] if parent else []), cls
        assert (cls.code, cls.http_status) == (code, status), cls
    assert sorted(drawn) == sorted(cls.__name__ for cls in classes), "the tree draws a class that does not exist"


def test_every_error_class_lives_in_errors_py_and_has_a_status_a_door_can_send() -> None:
    for cls in every_error_class():
        assert cls.__module__ == "servicetsunami.errors", f"{cls.__module__}.{cls.__name__} belongs in errors.py"
        assert 400 <= cls.http_status <= 599, cls
        assert isinstance(cls.transient, bool), cls


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (EngineError("the workspace is busy"), False),
        (EngineError("the workspace is busy", transient=True), True),
        (SourceError("lost the connection", transient=True), True),
        (RateLimited("slow down", retry_after=3), True),
        (RateLimited("slow down", retry_after=3, transient=False), False),
    ],
)
def test_a_raise_may_say_whether_a_retry_helps_else_the_class_decides(error: TsunamiError, transient: bool) -> None:
    assert error.is_transient is transient
    assert "transient" not in error.details


def test_source_errors_are_not_engine_errors() -> None:
    assert not issubclass(SourceError, EngineError)
    assert SourceError.http_status == EngineError.http_status
