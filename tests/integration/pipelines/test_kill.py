"""A worker SIGKILLed in the middle of a job run: after the survivor's sweep every task run has
ended, the job run is taken over and ends, and the tasks that had finished are neither run again
nor write their rows twice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from servicetsunami.services.catalog.query import query_sql
from servicetsunami.services.container import Services
from servicetsunami.services.pipelines import job_runs
from servicetsunami.services.pipelines.job_runs import queue_job_run
from servicetsunami.services.pipelines.runner import TASK_RUN
from servicetsunami.services.runs import service as runs
from servicetsunami.store.repositories import jobs as jobs_repo
from servicetsunami.store.repositories import runs as runs_repo
from servicetsunami.tenancy import Principal
from tests.helpers import make_principal
from tests.integration.pipelines.support import create, sql_task, states, wait_end, wait_for
from tests.integration.runs.support import settings_for
from tests.integration.runs.test_kill import Child

pytestmark = pytest.mark.slow

ENDLESS = "CREATE OR REPLACE TABLE silver.huge AS SELECT count(*) AS n FROM range(1000000000) a, range(1000000000) b"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def svc(home: Path, database_url: str) -> Iterator[Services]:
    services = Services.open(settings_for(home, database_url))  # the survivor; its worker starts later
    try:
        yield services
    finally:
        services.close()


@pytest.fixture
def owner(svc: Services) -> Principal:
    return make_principal(svc, "acme", role="engineer")[0]


def test_after_a_sigkill_mid_run_every_task_ends_and_finished_work_is_not_repeated(
    svc: Services, owner: Principal, home: Path, database_url: str
) -> None:
    job_id = create(
        svc,
        owner,
        "killed",
        [
            sql_task("once", "CREATE OR REPLACE TABLE silver.once AS SELECT id FROM range(10)"),
            sql_task("endless", ENDLESS, "once"),
            sql_task("after", "SELECT 1", "endless"),
        ],
    )
    with svc.store.session(write_lock=True) as session:  # queued without starting this process's worker
        job = jobs_repo.get_job(session, job_id, tenant_id=owner.tenant_id)
        run = queue_job_run(
            session,
            job,
            tenant_id=owner.tenant_id,
            subject=owner.subject,
            role="engineer",
            parameters={},
            trigger="manual",
        )
        assert run is not None
        run_id = run.id
    child = Child(home, database_url)
    try:
        child.expect("ready")
        wait_for(
            lambda: states(job_runs.get_job_run(svc, owner, run_id))["endless"] == "running", svc, "endless to run"
        )
        before = job_runs.get_job_run(svc, owner, run_id)
    finally:
        child.kill()
    runs.ensure_worker(svc)  # the survivor sweeps and takes the job run over
    after = wait_end(svc, owner, run_id)
    assert after.state == "failed"
    assert states(after) == {"once": "succeeded", "endless": "failed", "after": "skipped"}
    endless = next(t for t in after.tasks if t["task_key"] == "endless")
    assert endless["error_code"] == "worker_lost"
    assert after.tasks[0]["run_id"] == before.tasks[0]["run_id"]  # "once" was not run again
    with svc.store.session() as session:
        children = runs_repo.list_runs(session, tenant_id=owner.tenant_id, kind=TASK_RUN, parent_id=run_id)
        assert all(c.finished for c in children)
        assert runs_repo.get_run(session, run_id, tenant_id=None).attempts == 2
    assert query_sql(svc, owner, "SELECT count(*) FROM silver.once").rows == [[10]]
