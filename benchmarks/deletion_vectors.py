"""What deletion vectors cost and save on the local engine, in one run.

Builds two copies of a 5M-row bronze table (bigint id, text, double, timestamp), upserts 1% of the
keys spread over the whole table (every 100th id) into each through a staged merge, one copy with
deletion vectors (the default) and one copy-on-write (``deletion_vectors=False``), then times three
queries on each and on the deletion-vector copy after ``optimize`` (which purges the vectors).

    .venv/bin/python benchmarks/deletion_vectors.py [--rows 5000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

from servicetsunami.engines.base import Idempotency
from servicetsunami.engines.local.engine import LocalEngine
from servicetsunami.sql import guard_query
from servicetsunami.tenancy import TableRef

REF = TableRef("tenant_bench", "bronze", "orders")
QUERIES = {
    "count and sum": "SELECT count(*) AS n, sum(amount) AS total FROM orders",
    "group by": "SELECT customer, count(*) AS n FROM orders GROUP BY customer ORDER BY n DESC LIMIT 5",
    "point filter": "SELECT * FROM orders WHERE id = 1234567",
}


def staged(engine: LocalEngine, sql: str, mode: str, sequence: int) -> float:
    stage = engine.new_stage(REF)
    options = "FORMAT parquet, FILE_SIZE_BYTES '64MB', OVERWRITE_OR_IGNORE true"
    duckdb.connect().execute(f"COPY ({sql}) TO '{stage}' ({options})")
    started = time.perf_counter()
    engine.commit_stage(REF, stage, mode=mode, merge_keys=["id"], idempotency=Idempotency("bench", sequence))  # type: ignore[arg-type]
    return time.perf_counter() - started


def timed_query(engine: LocalEngine, sql: str, repeat: int) -> float:
    guarded = guard_query(sql, catalog=REF.catalog)
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        engine.query(guarded, max_rows=100, max_bytes=10**8, timeout_seconds=120)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = args.rows
    base = (
        f"SELECT i AS id, 'customer ' || (i % 5000) AS customer, (i % 1000) / 10.0 AS amount, "
        f"TIMESTAMP '2026-01-01' + INTERVAL (i % 86400) SECOND AS updated_at FROM range({rows}) t(i)"
    )
    change = base.replace(f"range({rows})", f"range(0, {rows}, 100)").replace("/ 10.0", "/ 10.0 + 1")
    with tempfile.TemporaryDirectory(prefix="tsunami-dv-") as home:
        engines = {
            "deletion vectors": LocalEngine(Path(home) / "dv"),
            "copy-on-write": LocalEngine(Path(home) / "cow", deletion_vectors=False),
        }
        merge_s = {}
        for label, engine in engines.items():
            engine.ensure_catalog(REF.catalog)
            staged(engine, base, "append", 1)
            merge_s[label] = staged(engine, change, "merge", 2)
        times = {
            label: {q: timed_query(e, sql, args.repeat) for q, sql in QUERIES.items()} for label, e in engines.items()
        }
        engines["deletion vectors"].optimize(REF)
        times["after optimize"] = {
            q: timed_query(engines["deletion vectors"], sql, args.repeat) for q, sql in QUERIES.items()
        }
        for engine in engines.values():
            engine.close()
    dv, cow = merge_s["deletion vectors"], merge_s["copy-on-write"]
    print(f"merge of {rows // 100:,} keys spread over {rows:,} rows ({duckdb.__version__}, median of {args.repeat})")
    print(f"  deletion vectors {dv:.2f} s, copy-on-write {cow:.2f} s: ratio {dv / cow:.2f}")
    print(f"{'query':<16}" + "".join(f"{label:>20}" for label in times) + f"{'dv / cow':>10}")
    for q in QUERIES:
        row = "".join(f"{times[label][q] * 1000:>17.1f} ms" for label in times)
        print(f"{q:<16}{row}{times['deletion vectors'][q] / times['copy-on-write'][q]:>10.2f}")


if __name__ == "__main__":
    main()
