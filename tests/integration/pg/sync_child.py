"""One sync run in a process of its own, for the tests that kill it with SIGKILL or fill its disk.

Usage: ``python sync_child.py ROOT STREAM TABLE MODE --sync-id ID --cursor COLUMN [--key COLUMN]
[--batch-rows N] [--max-file-bytes N]`` (the last simulates a full disk); the server comes from
``TSUNAMI_TEST_POSTGRES_URL``. Prints ``started`` once the run begins, ``committed <batch>`` after
every batch it commits, and ``done <rows>`` at the end, each line flushed, so the test can tell
where its kills landed.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
from pathlib import Path
from typing import cast
from urllib.parse import unquote, urlsplit

from servicetsunami.connectors.postgres import PostgresConfig, PostgresSource
from servicetsunami.engines.local.engine import LocalEngine
from servicetsunami.services.ingestion.sync_runner import RunProgress, SyncMode, SyncPlan, SyncRunner
from servicetsunami.tenancy import TableRef

CATALOG = "tenant_pgsync"  # as in support.py, which this script does not import (it runs outside pytest)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("stream")
    parser.add_argument("table")
    parser.add_argument("mode", choices=["incremental_append", "incremental_merge"])
    parser.add_argument("--sync-id", required=True)
    parser.add_argument("--cursor", required=True)
    parser.add_argument("--key", action="append", default=[])
    parser.add_argument("--batch-rows", type=int, default=500)
    parser.add_argument(
        "--max-file-bytes", type=int, default=0, help="simulate a full disk: no file may grow past this"
    )
    args = parser.parse_args()
    if args.max_file_bytes:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (args.max_file_bytes, args.max_file_bytes))

    url = urlsplit(os.environ["TSUNAMI_TEST_POSTGRES_URL"])
    config = PostgresConfig(
        host=url.hostname or "127.0.0.1",
        port=url.port or 5432,
        database=url.path.lstrip("/"),
        user=unquote(url.username or "postgres"),
        password=unquote(url.password) if url.password else None,
    )
    engine = LocalEngine(args.root)
    engine.ensure_catalog(CATALOG)
    source = PostgresSource(config)
    plan = SyncPlan(
        sync_id=args.sync_id,
        stream=args.stream,
        target=TableRef(CATALOG, "bronze", args.table),
        mode=cast(SyncMode, args.mode),
        cursor_column=args.cursor,
        primary_key=args.key,
    )

    def report(progress: RunProgress) -> None:
        print(f"committed {progress.batches}", flush=True)

    runner = SyncRunner(
        engine, source, plan, run_id=os.urandom(6).hex(), batch_rows=args.batch_rows, on_progress=report
    )
    print("started", flush=True)
    progress = runner.run()
    source.close()
    engine.close()
    print(f"done {progress.rows}", flush=True)


if __name__ == "__main__":
    main()
