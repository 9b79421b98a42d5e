"""How long does counting active runs take once there is a long history?

Two counts of ``store.repositories.runs.count_active``, each against its own store:

- *a job's runs*: each start of a job run counts the job's queued and running runs against its
  ``max_concurrent_runs``. The store gets ``--history`` finished job runs (spread over five jobs);
  the index is ``ix_runs_resource_id_state`` (migration 0015), and without it every run of the job
  is read through ``ix_runs_resource_id_created_at``.
- *a tenant's task runs*: each start of a job's tasks counts the tenant's queued and running task
  runs against ``jobs.max_parallel_tasks``. The store gets ``--history`` finished task runs; the
  index is ``ix_runs_tenant_id_kind_state`` (migration 0016), and without it every task run of the
  tenant is read through ``ix_runs_tenant_id_kind_created_at``.

One run in a thousand is left running. Each count is timed ``--repeat`` times with its index and, as
the baseline in the same run, after dropping it. On SQLite, and on PostgreSQL too when
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
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import insert, text

from servicetsunami.store.db import Store
from servicetsunami.store.models import Run, Tenant, utcnow
from servicetsunami.store.repositories import runs as runs_repo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the scratch database helper is the tests'
from tests.integration.runs.support import postgres_database


@dataclass(frozen=True)
class Count:
    label: str
    kind: str
    index: str
    by_resource: bool  # counted for one job (job runs), else for the whole tenant (task runs)


COUNTS = (
    Count("a job's runs", "job_run", "ix_runs_resource_id_state", by_resource=True),
    Count("a tenant's task runs", "task_run", "ix_runs_tenant_id_kind_state", by_resource=False),
)


def fill(store: Store, history: int, kind: str) -> str:
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
                "kind": kind,
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


def timed(store: Store, tenant: str, count: Count, repeat: int) -> float:
    times = []
    resource = "job0" if count.by_resource else None
    for _ in range(repeat):
        with store.session() as session:
            started = time.perf_counter()
            n = runs_repo.count_active(session, tenant_id=tenant, kind=count.kind, resource_id=resource)
            times.append((time.perf_counter() - started) * 1000)
        assert n > 0
    return statistics.median(times)


def measure(label: str, url: str, history: int, count: Count, repeat: int) -> None:
    store = Store(url)
    store.migrate()
    tenant = fill(store, history, count.kind)
    with store.session() as session:
        session.execute(text("ANALYZE runs" if store.engine.dialect.name == "postgresql" else "ANALYZE"))
    ours = timed(store, tenant, count, repeat)
    with store.session() as session:
        session.execute(text(f"DROP INDEX {count.index}"))
    before = timed(store, tenant, count, repeat)
    store.dispose()
    counted = f"{history // 5:,} runs of the job" if count.by_resource else f"{history:,} task runs of the tenant"
    print(
        f"{label}, {count.label} ({counted}): count_active p50 {ours:.3f} ms with {count.index}, "
        f"{before:.3f} ms without (baseline): baseline / ours = {before / ours:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--history", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    for count in COUNTS:
        with tempfile.TemporaryDirectory() as folder:
            measure("SQLite", f"sqlite:///{Path(folder) / 'tsunami.db'}", args.history, count, args.repeat)
        if os.environ.get("TSUNAMI_TEST_POSTGRES_URL"):
            with postgres_database() as url:
                measure("PostgreSQL", url, args.history, count, args.repeat)


if __name__ == "__main__":
    main()
