"""`tsunami --help` stays fast: the command modules import services, engines and doors inside commands."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("duckdb", "deltalake", "pyarrow", "sqlalchemy", "fastapi", "uvicorn", "mcp", "psycopg", "sqlglot")
OUR_HEAVY = ("services", "engines", "connectors", "store", "api", "mcp", "web", "security")

PROBE = """
import json, sys
from servicetsunami.cli import app
try:
    app(["--help"])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def test_help_loads_no_engine_store_or_door_module() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60)
    loaded = json.loads(done.stderr.strip().splitlines()[-1])
    tops = {name.split(".")[0] for name in loaded}
    ours = {name.split(".")[1] for name in loaded if name.startswith("servicetsunami.")}
    assert tops.isdisjoint(HEAVY), sorted(tops & set(HEAVY))
    assert ours.isdisjoint(OUR_HEAVY), sorted(ours & set(OUR_HEAVY))
