"""How long does counting one job's active runs take once the job has a long history?

Each start of a job run counts the job's queued and running runs against its ``max_concurrent_runs``
(``store.repositories.runs.count_active``). The store gets ``--history`` finished runs of one job
(spread over five jobs, one run in a thousand left running), then the count is timed ``--repeat``
times through the repository, with the index ``ix_runs_resource_id_state`` (migration 0015) and, as
the baseline in the same run, after dropping it (the plan before 0015: every run of the job through
``ix_runs_resource_id_created_at``). On SQLite, and on PostgreSQL too when
``TSUNAMI_TEST_POSTGRES_URL`` is set (a scratch database is made and dropped, as the tests do).

Usage: ``python benchmarks/active_runs.py [--history 50000] [--repeat 200]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import insert, text

from servicetsunami.store.db import Store
from servicetsunami.store.models import Run, Tenant, utcnow
from servicetsunami.store.repositories import runs as runs_repo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the scratch database helper is the tests'
from tests.integration.runs.support import postgres_database


def fill(store: Store, history: int) -> str:
    """The tenant whose job runs were written."""
    with store.session() as session:
        row = Tenant(slug="bench", name="bench")
        session.add(row)
        session.flush()
        tenant = row.id
    now = utcnow()
    batch = []
    for i in range(history):
        batch.append(
            {
                "id": str(uuid.uuid4()),
                "tenant_id": tenant,
                "kind": "job_run",
                "subject": "bench",
                "role": "admin",
                "resource_id": f"job{i % 5}",
                "params": {},
                "state": "running" if i % 1000 == 0 else "succeeded",
                "created_at": now,
                "updated_at": now,
            }
        )
        if len(batch) == 5000:
            with store.session() as session:
                session.execute(insert(Run), batch)
            batch = []
    if batch:
        with store.session() as session:
            session.execute(insert(Run), batch)
    return tenant


def timed(store: Store, tenant: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        with store.session() as session:
            started = time.perf_counter()
            n = runs_repo.count_active(session, tenant_id=tenant, kind="job_run", resource_id="job0")
            times.append((time.perf_counter() - started) * 1000)
        assert n > 0
    return statistics.median(times)


def measure(label: str, url: str, history: int, repeat: int) -> None:
    store = Store(url)
    store.migrate()
    tenant = fill(store, history)
    with store.session() as session:
        session.execute(text("ANALYZE runs" if store.engine.dialect.name == "postgresql" else "ANALYZE"))
    ours = timed(store, tenant, repeat)
    with store.session() as session:
        session.execute(text("DROP INDEX ix_runs_resource_id_state"))
    before = timed(store, tenant, repeat)
    store.dispose()
    print(
        f"{label}: {history // 5:,} runs of the job, count_active p50 {ours:.3f} ms with the index, "
        f"{before:.3f} ms without (baseline): baseline / ours = {before / ours:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--history", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        measure("SQLite", f"sqlite:///{Path(folder) / 'tsunami.db'}", args.history, args.repeat)
    pg = os.environ.get("TSUNAMI_TEST_POSTGRES_URL")
    if pg:
        with postgres_database() as url:
            measure("PostgreSQL", url, args.history, args.repeat)


if __name__ == "__main__":
    main()
