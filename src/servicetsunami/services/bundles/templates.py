"""The text of the files :func:`~.scaffold.create_tests` writes. ``TEST_MODULE`` is filled with
``str.format`` (its literal braces doubled); every value put into it is a Python literal made by
``pprint``/``repr``, never pasted text."""

from __future__ import annotations

CONFTEST = '''"""Runs notebooks on the local engine through the `tsunami` CLI.

The CLI works on TSUNAMI_HOME as the key in TSUNAMI_API_KEY (both from the environment). Set
TSUNAMI_CLI to the command to use (default: `tsunami` when it is on PATH, else `python -m
servicetsunami.cli`) and TSUNAMI_TEST_TIMEOUT to a run's limit in seconds (default 600).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# Notebook files of this project -> the workspace path they are imported at before the tests run.
NOTEBOOK_FILES: dict[str, str] = __IMPORTS__
# The test modules in the order they run: a notebook after those that write the tables it reads.
RUN_ORDER: list[str] = __ORDER__
PROJECT = Path(__file__).resolve().parent.parent
TIMEOUT = float(os.environ.get("TSUNAMI_TEST_TIMEOUT", "600"))


class Tsunami:
    """The `tsunami` command, as the key in TSUNAMI_API_KEY."""

    def __init__(self, command: list[str]) -> None:
        self.command = command

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.command, *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT + 60,
            check=False,
            env={**os.environ, "COLUMNS": "1000", "NO_COLOR": "1"},
        )

    def check(self, *args: str) -> str:
        done = self(*args)
        if done.returncode != 0:
            pytest.fail(f"tsunami {' '.join(args[:2])} failed: {done.stderr.strip()[-2000:]}")
        return done.stdout

    def import_notebook(self, file: str, path: str) -> None:
        self.check("notebooks", "import", str(PROJECT / file), "--path", path, "--overwrite")

    def run_notebook(self, path: str, parameters: dict[str, str]) -> dict[str, Any]:
        """The finished run (`tsunami notebooks run --wait` as JSON)."""
        params = [arg for name, value in parameters.items() for arg in ("--param", f"{name}={value}")]
        done = self("notebooks", "run", path, *params, "--wait", "--timeout", str(TIMEOUT))
        if done.returncode not in (0, 1):  # 1: the run ended but did not succeed
            pytest.fail(f"tsunami notebooks run failed: {done.stderr.strip()[-2000:]}")
        return json.loads(done.stdout)

    @staticmethod
    def failure(run: dict[str, Any]) -> str:
        """Why a run did not succeed (its state, failing cell and error), for an assertion message."""
        cells = [c for c in run.get("cells", []) if c.get("status") == "failed"]
        where = f" (cell {cells[0]['index']})" if cells else ""
        return f"{run['run']['state']}{where}: {run['run'].get('error_code')} {run['run'].get('error')}"

    def columns(self, table: str) -> list[str] | None:
        """The columns of `table` (schema.table), or None when it cannot be read."""
        done = self("query", f"SELECT * FROM {table} LIMIT 0", "--json")
        if done.returncode != 0:
            return None
        return [column["name"] for column in json.loads(done.stdout)["columns"]]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        stem = Path(str(item.path)).stem
        return RUN_ORDER.index(stem) if stem in RUN_ORDER else len(RUN_ORDER)

    items.sort(key=rank)  # stable: the parameter sets of one module keep their order


@pytest.fixture(scope="session")
def tsunami() -> Tsunami:
    if not os.environ.get("TSUNAMI_API_KEY"):
        pytest.fail("set TSUNAMI_API_KEY to a key of the tenant the notebooks run as (tsunami keys create)")
    configured = os.environ.get("TSUNAMI_CLI")
    if configured:
        command = shlex.split(configured)
    elif shutil.which("tsunami"):
        command = ["tsunami"]
    else:
        command = [sys.executable, "-m", "servicetsunami.cli"]
    cli = Tsunami(command)
    for file, path in NOTEBOOK_FILES.items():
        cli.import_notebook(file, path)
    return cli
'''

TEST_MODULE = '''"""The notebook {path}: it runs on the local engine with its widgets' defaults and each parameter
set below, succeeds, and leaves the tables it writes with the columns they had when these tests
were generated (None: the table did not exist then; only its existence is checked).
"""

from __future__ import annotations

from typing import Any

import pytest

NOTEBOOK = {notebook}

PARAMETER_SETS: dict[str, dict[str, str]] = {parameter_sets}

WRITES: dict[str, list[str] | None] = {writes}


{skip}@pytest.mark.parametrize("parameters", list(PARAMETER_SETS.values()), ids=list(PARAMETER_SETS))
def test_{name}_succeeds_and_writes_its_tables(tsunami: Any, parameters: dict[str, str]) -> None:
    run = tsunami.run_notebook(NOTEBOOK, parameters)
    assert run["run"]["state"] == "succeeded", tsunami.failure(run)
    for table, expected in WRITES.items():
        columns = tsunami.columns(table)
        assert columns is not None, f"{{table}} was not written"
        if expected is not None:
            assert columns == expected, f"{{table}} has other columns than expected"
'''

README = """# Notebook tests

Run `pytest tests` with `TSUNAMI_HOME` (the data folder) and `TSUNAMI_API_KEY` (a key of the tenant)
set: each notebook runs on the local engine through `tsunami notebooks run` with its widgets' defaults
and each parameter set in its test module, and must succeed and leave the tables it writes with the
expected columns. Edit `PARAMETER_SETS` and `WRITES` in `tests/test_*.py` as the notebooks change.
"""
