"""One Salesforce sync run in a process of its own, for the test that kills it with SIGKILL.

Usage: ``python sync_child.py ROOT CONFIG_JSON STREAM TABLE MODE --sync-id ID --cursor FIELD [--key
FIELD] [--batch-rows N]``. Prints ``started``, ``committed <batch>`` after each commit and ``done
<rows>`` at the end, each line flushed, so the test can tell where its kills landed.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import cast

from servicetsunami.connectors.salesforce.config import SalesforceConfig
from servicetsunami.connectors.salesforce.source import SalesforceSource
from servicetsunami.engines.local.engine import LocalEngine
from servicetsunami.security.ssrf import check_source_host
from servicetsunami.services.ingestion.sync_runner import RunProgress, SyncMode, SyncPlan, SyncRunner
from servicetsunami.tenancy import TableRef

CATALOG = "tenant_pgsync"  # as in tests/integration/pg/support.py, which this script does not import


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("config")
    parser.add_argument("stream")
    parser.add_argument("table")
    parser.add_argument("mode", choices=["incremental_append", "incremental_merge"])
    parser.add_argument("--sync-id", required=True)
    parser.add_argument("--cursor", required=True)
    parser.add_argument("--key", action="append", default=[])
    parser.add_argument("--batch-rows", type=int, default=100)
    args = parser.parse_args()

    engine = LocalEngine(args.root)
    engine.ensure_catalog(CATALOG)
    source = SalesforceSource(
        SalesforceConfig.model_validate_json(args.config), vet=lambda h, p: check_source_host(h, p, multi_tenant=False)
    )
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
