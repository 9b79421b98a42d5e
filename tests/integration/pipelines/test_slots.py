"""The tenant's task limit holds across job runs and processes: counting the tenant's active task
runs and queueing new ones is one serialised step on both stores (an advisory lock on PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from servicetsunami.services.container import Services
from servicetsunami.services.pipelines import job_runs
from servicetsunami.services.pipelines.runner import TASK_RUN
from servicetsunami.services.runs import service as runs
from servicetsunami.settings import Settings
from servicetsunami.store.repositories import runs as runs_repo
from servicetsunami.tenancy import Principal
from tests.helpers import make_principal
from tests.integration.pipelines.support import DEADLINE, create, settings_for, sql_task, wait_end
from tests.integration.runs.support import FAST_RUNS


@pytest.fixture
def svc(tmp_path: Path, database_url: str) -> Iterator[Services]:
    services = Services.open(settings_for(tmp_path / "home", database_url, max_parallel_tasks=2))
    try:
        yield services
    finally:
        services.close()


@pytest.fixture
def owner(svc: Services) -> Principal:
    return make_principal(svc, "acme", role="engineer")[0]


def test_a_second_count_of_the_tenants_slots_waits_for_the_first_to_commit(svc: Services, owner: Principal) -> None:
    held, second_done, release = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with svc.store.session(write_lock=True) as session:
            runs_repo.lock_slots(session, tenant_id=owner.tenant_id, kind=TASK_RUN)
            held.set()
            release.wait(DEADLINE)

    def second() -> None:
        held.wait(DEADLINE)
        with svc.store.session(write_lock=True) as session:
            runs_repo.lock_slots(session, tenant_id=owner.tenant_id, kind=TASK_RUN)
        second_done.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    try:
        assert held.wait(DEADLINE)
        assert not second_done.wait(0.5), "the second transaction counted while the first held the slots"
    finally:
        release.set()
    assert second_done.wait(DEADLINE)
    for t in threads:
        t.join(DEADLINE)


def test_concurrent_job_runs_never_run_more_tasks_than_the_tenant_limit(svc: Services, owner: Principal) -> None:
    run_ids = []
    for j in range(3):
        tasks = [
            sql_task(f"t{i}", f"CREATE OR REPLACE TABLE silver.j{j}_t{i} AS SELECT count(*) AS n FROM range(2000000)")
            for i in range(3)
        ]
        run_ids.append(job_runs.start_job_run(svc, owner, create(svc, owner, f"wide{j}", tasks)))
    spans = []
    for run_id in run_ids:
        run = wait_end(svc, owner, run_id)
        assert run.state == "succeeded", run.tasks
        spans += [(t["started_at"], t["finished_at"]) for t in run.tasks]
    most = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    assert most <= 2


def test_a_job_runs_its_task_runs_in_its_own_worker_when_that_worker_has_room(
    svc: Services, owner: Principal, tmp_path: Path, database_url: str
) -> None:
    other = Services.open(settings_for(tmp_path / "home", database_url, max_parallel_tasks=2))  # a second worker
    try:
        runs.ensure_worker(other)
        tasks = [sql_task("a", "SELECT 1"), sql_task("b", "SELECT 2", "a"), sql_task("c", "SELECT 3", "a")]
        run = wait_end(svc, owner, job_runs.start_job_run(svc, owner, create(svc, owner, "here", tasks)))
        assert run.state == "succeeded", run.tasks
        with svc.store.session() as session:
            coordinator = runs_repo.get_run(session, run.run_id, tenant_id=None).worker
            children = runs_repo.list_runs(session, tenant_id=owner.tenant_id, kind=TASK_RUN, parent_id=run.run_id)
            assert {(c.worker, c.attempts) for c in children} == {(coordinator, 1)}
            assert all(c.started_at is not None and c.started_at <= c.created_at for c in children)  # never queued
    finally:
        other.close()


def test_a_worker_holds_no_more_slots_for_task_runs_than_it_has(tmp_path: Path, database_url: str) -> None:
    settings = Settings(  # type: ignore[call-arg]  # pydantic-settings' _env_file option
        home=tmp_path / "small", database_url=database_url, runs={**FAST_RUNS, "max_parallel": 3}, _env_file=None
    )
    services = Services.open(settings)
    try:
        assert services.launcher.reserve(TASK_RUN, 2) == 0  # not started: nothing is claimed here
        runs.ensure_worker(services)
        assert services.launcher.reserve(TASK_RUN, 2) == 2
        assert services.launcher.reserve(TASK_RUN, 5) == 1
        assert services.launcher.reserve(TASK_RUN, 1) == 0
        services.launcher.release(TASK_RUN, 3)
        assert services.launcher.reserve(TASK_RUN, 5) == 3
    finally:
        services.close()
