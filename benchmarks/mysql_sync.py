"""MySQL/MariaDB sync speed and memory: a table synced to bronze versus the raw ``mysql`` client.

Baseline: ``mysql --batch --quick -e "SELECT ..." > /dev/null``, the server's own client streaming
every row out over one connection. Ours: (b) a ``full_refresh`` :class:`SyncRunner` run into a fresh
lakehouse, and (c) an ``incremental_merge`` run after 1% of the rows got a new ``updated_at`` (the
merge sync is first loaded by an untimed run, so (c) starts from a committed cursor). Each sync runs
in a fresh child process, so its peak RSS (``ru_maxrss``) is that run's alone; the full sync of a
table with a fifth of the rows shows whether memory grows with table size.

The tables live in database ``tsunami_bench`` and are created when missing (server-side
``INSERT ... SELECT`` from the sequence engine): id bigint primary key, customer varchar, amount
decimal(12,2), qty int unsigned, updated_at datetime(6) (indexed), is_gift tinyint(1), status enum,
note text.

The changed rows of (c) are every 100th key, spread over the whole table, so the server reads them
from as many pages. With MariaDB's default 128 MB buffer pool the 5M-row table (about 470 MB with its
index) does not stay in memory, and the ``mysql`` client alone needs ~1.6 s for that ``SELECT``
against ~0.16 s when it does: the ratio would measure the server's page reads, not the sync. So the
script sets ``innodb_buffer_pool_size`` to ``--buffer-pool-mb`` (default 1024, as a production server
sized for its data would have it; ``0`` keeps the server's own) for the run, and restores it after.

Usage: ``python benchmarks/mysql_sync.py [--rows 5000000] [--small-rows 1000000] [--repeat 3]
[--buffer-pool-mb 1024]``; the server comes from ``TSUNAMI_TEST_MYSQL_URL`` (default
``mysql://root@127.0.0.1:3306/test``). Targets: full sync <= 2.0x the raw client; incremental <= 0.10x
the full sync; peak RSS < 600 MB and flat.
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

DATABASE = "tsunami_bench"
COLUMNS = "id, customer, amount, qty, updated_at, is_gift, status, note"
CATALOG = "tenant_bench"


def server() -> dict[str, Any]:
    parts = urlsplit(os.environ.get("TSUNAMI_TEST_MYSQL_URL") or "mysql://root@127.0.0.1:3306/test")
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password) if parts.password else "",
    }


def connect(database: str | None = None) -> Any:
    import pymysql

    return pymysql.connect(**server(), database=database, autocommit=True, init_command="SET time_zone = '+00:00'")


def ensure_table(name: str, rows: int) -> None:
    conn = connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
        cur.execute(f"USE {DATABASE}")
        cur.execute(
            "SELECT table_rows FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
            (DATABASE, name),
        )
        found = cur.fetchone()
        if found is not None:
            cur.execute(f"SELECT count(*) FROM {name}")
            if cur.fetchone()[0] == rows:
                return
            cur.execute(f"DROP TABLE {name}")
        print(f"creating {DATABASE}.{name} with {rows} rows", flush=True)
        cur.execute(
            f"CREATE TABLE {name} (id bigint PRIMARY KEY, customer varchar(40), amount decimal(12,2), "
            "qty int unsigned, updated_at datetime(6) NOT NULL, is_gift tinyint(1), "
            "status enum('new','paid','shipped','returned'), note text, KEY (updated_at))"
        )
        step = 500_000
        for start in range(0, rows, step):
            end = min(rows, start + step)
            cur.execute(
                f"INSERT INTO {name} SELECT seq, CONCAT('customer ', seq MOD 10000), (seq MOD 100000) / 100, "
                "seq MOD 1000, TIMESTAMPADD(SECOND, seq, '2024-01-01'), seq MOD 2, "
                "ELT(1 + seq MOD 4, 'new', 'paid', 'shipped', 'returned'), "
                "IF(seq MOD 5 = 0, NULL, CONCAT('note ', seq)) "
                f"FROM seq_{start + 1}_to_{end}"
            )
    conn.close()


def raw_client(name: str) -> float:
    s = server()
    command = ["mysql", "--batch", "--quick", "-h", s["host"], "-P", str(s["port"]), "-u", s["user"], DATABASE]
    env = {**os.environ, "MYSQL_PWD": s["password"]}
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        subprocess.run([*command, "-e", f"SELECT {COLUMNS} FROM {name}"], stdout=sink, check=True, env=env)
    return time.perf_counter() - started


def run_sync(root: Path, name: str, mode: str, sync_id: str) -> dict[str, Any]:
    from servicetsunami.connectors.mysql import MySQLConfig, MySQLSource
    from servicetsunami.engines.local.engine import LocalEngine
    from servicetsunami.services.ingestion.sync_runner import SyncPlan, SyncRunner
    from servicetsunami.tenancy import TableRef

    s = server()
    config = MySQLConfig(
        host=s["host"], port=s["port"], user=s["user"], password=s["password"] or None, database=DATABASE
    )
    engine = LocalEngine(root)
    engine.ensure_catalog(CATALOG)
    source = MySQLSource(config)
    plan = SyncPlan(
        sync_id=sync_id,
        stream=f"{DATABASE}.{name}",
        target=TableRef(CATALOG, "bronze", sync_id),
        mode=mode,  # type: ignore[arg-type]
        cursor_column="updated_at" if mode != "full_refresh" else None,
        primary_key=["id"] if mode == "incremental_merge" else [],
    )
    started = time.perf_counter()
    progress = SyncRunner(engine, source, plan, run_id=os.urandom(6).hex(), batch_rows=1_000_000).run()
    seconds = time.perf_counter() - started
    source.close()
    engine.close()
    return {
        "seconds": seconds,
        "rows": progress.rows,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def child(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def touch_one_percent(name: str, rows: int, round_: int) -> None:
    """1% of the rows (every 100th key) change, stamped a day past the newest row: newer than any
    cursor an earlier run of this script left behind."""
    conn = connect(DATABASE)
    with conn.cursor() as cur:
        cur.execute(f"SELECT max(updated_at) FROM {name}")
        (newest,) = cur.fetchone()
        cur.execute(
            f"UPDATE {name} SET amount = amount + 1, updated_at = TIMESTAMPADD(DAY, 1, %s) WHERE id MOD 100 = %s",
            (newest, round_ % 100),
        )
    conn.close()


def buffer_pool(megabytes: int | None = None) -> int:
    """The server's InnoDB buffer pool size in MB, after setting it when ``megabytes`` is given."""
    conn = connect()
    with conn.cursor() as cur:
        if megabytes is not None:
            cur.execute("SET GLOBAL innodb_buffer_pool_size = %s", (megabytes * 1024 * 1024,))
            for _ in range(100):  # the resize runs in the background
                cur.execute("SHOW STATUS LIKE 'Innodb_buffer_pool_resize_status'")
                row = cur.fetchone()
                if not row or not row[1] or "complete" in str(row[1]).lower():
                    break
                time.sleep(0.1)
        cur.execute("SELECT @@innodb_buffer_pool_size")
        (size,) = cur.fetchone()
    conn.close()
    return int(size) // (1024 * 1024)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--small-rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--buffer-pool-mb", type=int, default=1024)
    parser.add_argument("--child", nargs=4, default=None)
    args = parser.parse_args()
    if args.child:
        root, name, mode, sync_id = args.child
        print(json.dumps(run_sync(Path(root), name, mode, sync_id)))
        return
    before = buffer_pool()
    if args.buffer_pool_mb:
        buffer_pool(args.buffer_pool_mb)
    try:
        measure(args)
    finally:
        if buffer_pool() != before:
            buffer_pool(before)


def measure(args: argparse.Namespace) -> None:
    big, small = f"orders_{args.rows}", f"orders_{args.small_rows}"
    ensure_table(big, args.rows)
    ensure_table(small, args.small_rows)
    raws, fulls, smalls, merges = [], [], [], []
    with tempfile.TemporaryDirectory() as folder:
        merge_root = Path(folder) / "merge"
        child(str(merge_root), big, "incremental_merge", "merged")  # untimed load of the merge sync
        for n in range(args.repeat):
            raws.append(raw_client(big))
            fulls.append(child(str(Path(folder) / f"full{n}"), big, "full_refresh", "full"))
            smalls.append(child(str(Path(folder) / f"small{n}"), small, "full_refresh", "small"))
            touch_one_percent(big, args.rows, n)
            merges.append(child(str(merge_root), big, "incremental_merge", "merged"))
    raw = statistics.median(raws)
    full = statistics.median(r["seconds"] for r in fulls)
    merge = statistics.median(r["seconds"] for r in merges)
    print(f"{args.rows} rows, median of {args.repeat}, server buffer pool {buffer_pool()} MB")
    print(f"mysql --batch --quick > /dev/null   {raw:7.2f} s")
    print(f"full_refresh sync to bronze         {full:7.2f} s  ratio {full / raw:4.2f}  rows={fulls[0]['rows']}")
    print(
        f"incremental_merge of 1% changed     {merge:7.2f} s  ratio to full {merge / full:4.2f}  "
        f"rows={merges[0]['rows']}"
    )
    print(
        f"peak RSS: {max(r['rss_mb'] for r in smalls):.0f} MB at {args.small_rows} rows, "
        f"{max(r['rss_mb'] for r in fulls):.0f} MB at {args.rows}"
    )


if __name__ == "__main__":
    main()
