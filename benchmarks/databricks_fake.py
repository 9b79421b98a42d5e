"""What does the Databricks engine add over the local engine it runs on in the fake?

Starts the fake workspace (tests/fakes/databricks) on loopback, then writes N rows (append in M
batches) and runs a few Databricks SQL queries through the Databricks engine (SDK, HTTP, Files API,
Statement Execution with Arrow chunks behind external links), and the same writes and queries on a
local engine directly. Prints both times and the ratio per step. This measures the engine's protocol
overhead on one machine; it says nothing about a real workspace's speed.

Usage: ``python benchmarks/databricks_fake.py [--rows 200000] [--batches 5]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the fake lives under tests/

from servicetsunami.engines.base import Engine
from servicetsunami.engines.databricks.engine import DatabricksEngine
from servicetsunami.engines.local.engine import LocalEngine
from servicetsunami.sql import guard_query
from servicetsunami.tenancy import TableRef
from tests.fakes.databricks.fixtures import databricks_settings
from tests.fakes.databricks.server import running_fake

CATALOG = "tenant_bench"
REF = TableRef(CATALOG, "bronze", "events")
QUERIES = {
    "count": "SELECT count(*) AS n FROM events",
    "group": "SELECT k, count(*) AS n, sum(v) AS s FROM events GROUP BY k ORDER BY k",
    "rows_10k": "SELECT id, k, v FROM events ORDER BY id LIMIT 10000",
}


def batch(start: int, rows: int) -> pa.RecordBatchReader:
    ids = pa.array(range(start, start + rows), pa.int64())
    table = pa.table({"id": ids, "k": pc.remainder(ids, 100), "v": pc.multiply(ids, 2)})
    return table.to_reader(max_chunksize=65_536)


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def run(engine: Engine, rows: int, batches: int) -> dict[str, float]:
    engine.ensure_catalog(CATALOG)
    per = rows // batches
    out = {"create": timed(lambda: engine.write_table(REF, batch(0, per), mode="create"))}
    out["appends"] = timed(
        lambda: [engine.write_table(REF, batch(i * per, per), mode="append") for i in range(1, batches)]
    )
    out["merge"] = timed(lambda: engine.write_table(REF, batch(rows - per // 2, per), mode="merge", merge_keys=["id"]))
    for name, sql in QUERIES.items():
        guarded = guard_query(sql, catalog=CATALOG)
        out[name] = timed(lambda g=guarded: engine.query(g, max_rows=20_000, max_bytes=10**9, timeout_seconds=120))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batches", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        local = LocalEngine(Path(tmp) / "local")
        baseline = run(local, args.rows, args.batches)
        local.close()
        with running_fake(Path(tmp) / "fake") as fake:
            fake.chunk_rows = 5_000
            dbx = DatabricksEngine(databricks_settings(fake))
            measured = run(dbx, args.rows, args.batches)
    print(f"{args.rows:,} rows in {args.batches} writes; local engine vs Databricks engine on the fake")
    print(f"{'step':<10} {'local s':>9} {'fake s':>9} {'ratio':>7}")
    for step, base in baseline.items():
        print(f"{step:<10} {base:>9.3f} {measured[step]:>9.3f} {measured[step] / base:>7.1f}")


if __name__ == "__main__":
    main()
