"""PostgreSQL sync speed and memory: a table synced to bronze versus draining one binary COPY.

Baseline: ``COPY (SELECT ...) TO STDOUT (FORMAT binary)`` read block by block by psycopg, the least
work that gets every row out of the server over one connection. Ours: (b) a ``full_refresh``
:class:`SyncRunner` run into a fresh lakehouse, and (c) an ``incremental_merge`` run after 1% of
the rows got a new ``updated_at`` (the merge sync is first loaded by an untimed run, so (c) starts
from a committed cursor). Each sync runs in a fresh child process, so its peak RSS (``ru_maxrss``)
is that run's alone; the full sync of a 1M-row copy of the table shows whether memory grows with
table size.

The tables live in schema ``tsunami_bench`` of the test database and are created when missing
(server-side ``INSERT ... SELECT generate_series``): id bigint primary key, customer text,
amount numeric(12,2), updated_at timestamptz (indexed, as a table synced incrementally would be),
is_gift boolean, status text with four values.

Usage: ``python benchmarks/pg_sync.py [--rows 5000000] [--small-rows 1000000] [--repeat 3]``; the
server comes from ``TSUNAMI_TEST_POSTGRES_URL`` (default: the Makefile's). Targets: full sync <= 2.0x
the raw COPY; incremental <= 0.10x the full sync; peak RSS < 600 MB and not growing with rows.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import sql

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SCHEMA = "tsunami_bench"
COLUMNS = "id, customer, amount, updated_at, is_gift, status"
CATALOG = "tenant_bench"


def conninfo(url: str) -> str:
    parts = urlsplit(url)
    user = unquote(parts.username or "postgres")
    password = f" password={unquote(parts.password)}" if parts.password else ""
    return f"host={parts.hostname} port={parts.port or 5432} dbname={parts.path.lstrip('/')} user={user}{password}"


def ensure_table(conn: psycopg.Connection[Any], name: str, rows: int, *, copy_of: str | None = None) -> None:
    table = sql.Identifier(SCHEMA, name)
    if conn.execute("SELECT to_regclass(%s)", [f"{SCHEMA}.{name}"]).fetchone() != (None,):
        count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
        if count == (rows,):
            return
        conn.execute(sql.SQL("DROP TABLE {}").format(table))
    print(f"creating {SCHEMA}.{name} ({rows:,} rows) ...", flush=True)
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))
    if copy_of:
        conn.execute(
            sql.SQL("CREATE TABLE {} AS SELECT * FROM {} WHERE id <= %s").format(
                table, sql.Identifier(SCHEMA, copy_of)
            ),
            [rows],
        )
    else:
        conn.execute(
            sql.SQL(
                """CREATE TABLE {} AS
                SELECT i::bigint AS id,
                       'customer ' || (i %% 99991) AS customer,
                       round((random() * 100000)::numeric, 2)::numeric(12,2) AS amount,
                       timestamptz '2024-01-01 00:00:00+00' + (i %% 8000000) * interval '3 seconds' AS updated_at,
                       (i %% 7 = 0) AS is_gift,
                       (ARRAY['new', 'paid', 'shipped', 'cancelled'])[1 + i %% 4] AS status
                FROM generate_series(1, %s) AS i"""
            ).format(table),
            [rows],
        )
    conn.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (id)").format(table))
    conn.execute(sql.SQL("CREATE INDEX ON {} (updated_at)").format(table))
    conn.execute(sql.SQL("VACUUM ANALYZE {}").format(table))


def raw_copy(url: str, name: str) -> dict[str, float]:
    """Drain one binary COPY of the table; seconds and bytes."""
    with psycopg.connect(conninfo(url)) as conn:
        started = time.perf_counter()
        size = 0
        with conn.cursor() as cur:
            query = sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT (FORMAT binary)").format(
                sql.SQL(COLUMNS), sql.Identifier(SCHEMA, name)
            )
            with cur.copy(query) as copy:
                for block in copy:
                    size += len(block)
        return {"seconds": time.perf_counter() - started, "bytes": size}


def child(kind: str, stream: str, root: str, url: str) -> None:
    """One sync run (``full``, ``seed`` or ``merge``) in this process; prints JSON."""
    from servicetsunami.connectors.postgres import PostgresConfig, PostgresSource
    from servicetsunami.engines.local.engine import LocalEngine
    from servicetsunami.services.ingestion.sync_runner import SyncPlan, SyncRunner
    from servicetsunami.tenancy import TableRef

    parts = urlsplit(url)
    config = PostgresConfig(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        database=parts.path.lstrip("/"),
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password) if parts.password else None,
    )
    engine = LocalEngine(Path(root))
    engine.ensure_catalog(CATALOG)
    source = PostgresSource(config)
    target = TableRef(CATALOG, "bronze", "orders")
    if kind == "full":
        plan = SyncPlan("bench-full", stream, target, "full_refresh")
    else:
        plan = SyncPlan("bench-merge", stream, target, "incremental_merge", "updated_at", ["id"])
    runner = SyncRunner(engine, source, plan, run_id=kind, batch_rows=50_000_000)
    started = time.perf_counter()
    progress = runner.run()
    elapsed = time.perf_counter() - started
    metrics = engine.history(target, limit=1)[0].metrics  # the last commit: a MERGE's own figures
    source.close()
    engine.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {"seconds": elapsed, "rows": progress.rows, "batches": progress.batches, "peak_mb": peak_mb}
    result["merge_seconds"] = metrics.get("execution_time_ms", 0) / 1000
    # delta-rs's merge counts the unchanged rows it copied; our merge counts the rows it wrote
    result["rows_written"] = metrics.get("num_target_rows_copied", metrics.get("num_output_rows", 0))
    result["files_rewritten"] = metrics.get("num_target_files_rewritten", metrics.get("num_target_files_removed", 0))
    result["files_marked"] = metrics.get("num_target_files_marked", 0)  # given deletion vectors
    result["rows_deleted"] = metrics.get("num_target_rows_deleted", 0)
    print(json.dumps(result))


def run_child(kind: str, stream: str, root: Path, url: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, stream, str(root), url],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"the {kind} sync of {stream} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# Which 1% of rows change: spread evenly over the table (every 100th id), or the newest 1% of ids
# (orders whose status moves on). A copy-on-write MERGE would rewrite every file holding a changed
# row, so the whole table in the spread case; ours marks the replaced rows in deletion vectors.
UPDATES = {
    "spread": "UPDATE {t} SET updated_at = now() WHERE id % 100 = 0",
    "recent": "UPDATE {t} SET updated_at = now() WHERE id > (SELECT max(id) - max(id) / 100 FROM {t})",
}


def update_one_percent(url: str, name: str, pattern: str) -> int:
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        cur = conn.execute(sql.SQL(UPDATES[pattern]).format(t=sql.Identifier(SCHEMA, name)))
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(SCHEMA, name)))
        return cur.rowcount


def measure(url: str, name: str, repeat: int) -> dict[str, list[dict[str, float]]]:
    stream = f"{SCHEMA}.{name}"
    results: dict[str, list[dict[str, float]]] = {}
    for _ in range(repeat):  # interleaved, so drift in the machine's load hits every side
        results.setdefault("copy", []).append(raw_copy(url, name))
        with tempfile.TemporaryDirectory(prefix="tsunami-bench-") as home:
            results.setdefault("full", []).append(run_child("full", stream, Path(home), url))
        with tempfile.TemporaryDirectory(prefix="tsunami-bench-") as home:
            results.setdefault("seed", []).append(run_child("seed", stream, Path(home), url))
            for pattern, kind in (("spread", "merge"), ("recent", "merge_recent")):
                changed = update_one_percent(url, name, pattern)
                merge = run_child("merge", stream, Path(home), url)
                merge["changed"] = changed
                results.setdefault(kind, []).append(merge)
    return results


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:6])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--small-rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    url = os.environ.get("TSUNAMI_TEST_POSTGRES_URL", DEFAULT_URL)
    large, small = f"orders_{args.rows}", f"orders_{args.small_rows}"
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        ensure_table(conn, large, args.rows)
        ensure_table(conn, small, args.small_rows, copy_of=large)

    measured = {rows: measure(url, name, args.repeat) for rows, name in ((args.small_rows, small), (args.rows, large))}

    def med(rows: int, kind: str, key: str) -> float:
        return statistics.median(r[key] for r in measured[rows][kind])

    print(f"PostgreSQL sync, {os.cpu_count()} cores, median of {args.repeat} run(s); syncs in fresh processes")
    for rows in (args.small_rows, args.rows):
        copy_s, full_s, merge_s = (
            med(rows, "copy", "seconds"),
            med(rows, "full", "seconds"),
            med(rows, "merge", "seconds"),
        )
        print(
            f"{rows:>10,} rows: raw COPY {copy_s:6.2f} s ({med(rows, 'copy', 'bytes') / 1e6:.0f} MB)   "
            f"full sync {full_s:6.2f} s (peak {med(rows, 'full', 'peak_mb'):4.0f} MB)   "
            f"initial merge load {med(rows, 'seed', 'seconds'):6.2f} s (peak {med(rows, 'seed', 'peak_mb'):4.0f} MB)   "
            f"incremental merge of {int(med(rows, 'merge', 'changed')):,} changed rows {merge_s:6.2f} s "
            f"(peak {med(rows, 'merge', 'peak_mb'):4.0f} MB)"
        )
    copy_s, full_s, merge_s = (med(args.rows, k, "seconds") for k in ("copy", "full", "merge"))
    print(f"full sync / raw COPY ({args.rows:,} rows): {full_s / copy_s:.2f} (target <= 2.0)")
    print(f"incremental merge / full sync ({args.rows:,} rows), 1% spread: {merge_s / full_s:.2f} (target <= 0.10)")
    recent_s = med(args.rows, "merge_recent", "seconds")
    print(
        f"incremental merge / full sync ({args.rows:,} rows), newest 1% of keys: {recent_s / full_s:.2f} "
        f"(target <= 0.10; peak {med(args.rows, 'merge_recent', 'peak_mb'):.0f} MB)"
    )
    for kind, label in (("merge", "spread"), ("merge_recent", "newest keys")):
        total, commit = med(args.rows, kind, "seconds"), med(args.rows, kind, "merge_seconds")
        deleted, marked = int(med(args.rows, kind, "rows_deleted")), int(med(args.rows, kind, "files_marked"))
        print(
            f"  {label}: of the incremental run's {total:.2f} s, the MERGE took {commit:.2f} s: it marked "
            f"{deleted:,} replaced rows in {marked:,} files' deletion vectors, rewrote "
            f"{int(med(args.rows, kind, 'files_rewritten')):,} files and wrote "
            f"{int(med(args.rows, kind, 'rows_written')):,} rows; reading the changed rows and the rest took "
            f"{total - commit:.2f} s "
            f"({(total - commit) / full_s:.2f} of the full sync)"
        )
    for kind in ("full", "seed", "merge"):
        small_mb, large_mb = med(args.small_rows, kind, "peak_mb"), med(args.rows, kind, "peak_mb")
        print(
            f"peak RSS of the {kind} run: {small_mb:.0f} MB at {args.small_rows:,} rows, {large_mb:.0f} MB at "
            f"{args.rows:,} rows; growth {large_mb / small_mb:.2f}x (target < 600 MB, not growing)"
        )


if __name__ == "__main__":
    main()
