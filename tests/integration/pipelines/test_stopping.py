"""Stopping work: a task's timeout and a job run's cancel interrupt the running query; repair re-runs
what failed as a new attempt of the same run."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from servicetsunami.errors import Conflict
from servicetsunami.services.container import Services
from servicetsunami.services.pipelines import job_runs, jobs
from servicetsunami.tenancy import Principal, TableRef
from tests.helpers import make_principal
from tests.integration.pipelines.support import create, run_to_end, settings_for, sql_task, states, wait_end, wait_for

ENDLESS = "CREATE OR REPLACE TABLE silver.huge AS SELECT count(*) AS n FROM range(1000000000) a, range(1000000000) b"


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Services]:
    services = Services.open(settings_for(tmp_path / "home"))
    try:
        yield services
    finally:
        services.close()


@pytest.fixture
def owner(svc: Services) -> Principal:
    return make_principal(svc, "acme", role="engineer")[0]


def test_a_task_past_its_timeout_has_its_query_stopped_and_is_timed_out(svc: Services, owner: Principal) -> None:
    job_id = create(
        svc, owner, "slow", [sql_task("endless", ENDLESS, timeout_seconds=1), sql_task("next", "SELECT 1", "endless")]
    )
    started = time.monotonic()
    run = run_to_end(svc, owner, job_id)
    assert time.monotonic() - started < 20  # the statement was interrupted, not left to run for hours
    assert states(run) == {"endless": "timed_out", "next": "skipped"}
    assert (run.state, run.tasks[0]["error_code"]) == ("failed", "timed_out")
    assert not svc.engine.table_exists(TableRef(owner.catalog, "silver", "huge"))


def test_a_timed_out_task_is_retried_only_when_it_says_so(svc: Services, owner: Principal) -> None:
    job_id = create(
        svc,
        owner,
        "slow_retry",
        [sql_task("endless", ENDLESS, timeout_seconds=0.5, max_retries=1, retry_on_timeout=True)],
    )
    run = run_to_end(svc, owner, job_id)
    assert (run.tasks[0]["state"], run.tasks[0]["attempts"]) == ("timed_out", 2)


def test_a_running_job_runs_progress_counts_its_tasks_by_state(svc: Services, owner: Principal) -> None:
    job_id = create(svc, owner, "progress", [sql_task("first", "SELECT 1"), sql_task("endless", ENDLESS, "first")])
    run_id = job_runs.start_job_run(svc, owner, job_id)

    def shown() -> dict[str, object]:
        return job_runs.get_job_run(svc, owner, run_id).progress.detail.get("tasks") or {}

    wait_for(lambda: shown() == {"succeeded": 1, "running": 1}, svc, "progress of one task done, one running")
    progress = job_runs.get_job_run(svc, owner, run_id).progress
    assert (progress.done, progress.total, progress.unit) == (1, 2, "tasks")
    job_runs.cancel_job_run(svc, owner, run_id)
    assert states(wait_end(svc, owner, run_id)) == {"first": "succeeded", "endless": "canceled"}


def test_canceling_a_job_run_stops_its_running_task_and_cancels_the_rest(svc: Services, owner: Principal) -> None:
    job_id = create(svc, owner, "cancel_me", [sql_task("endless", ENDLESS), sql_task("after", "SELECT 1", "endless")])
    run_id = job_runs.start_job_run(svc, owner, job_id)

    def running() -> bool:
        return states(job_runs.get_job_run(svc, owner, run_id))["endless"] == "running"

    wait_for(running, svc, "the endless task to start")
    with pytest.raises(Conflict):  # max_concurrent_runs is 1
        job_runs.start_job_run(svc, owner, job_id)
    with pytest.raises(Conflict):  # not while a run is under way
        jobs.delete_job(svc, owner, job_id)
    started = time.monotonic()
    job_runs.cancel_job_run(svc, owner, run_id, wait_seconds=30)
    run = wait_end(svc, owner, run_id)
    assert time.monotonic() - started < 20
    assert (run.state, run.status) == ("canceled", "Canceled")
    assert states(run) == {"endless": "canceled", "after": "canceled"}
    with pytest.raises(Conflict):
        job_runs.cancel_job_run(svc, owner, run_id)


def test_repair_reruns_the_failed_task_and_its_dependants_as_a_new_attempt_of_the_same_run(
    svc: Services, owner: Principal
) -> None:
    job_id = create(
        svc,
        owner,
        "repairable",
        [
            sql_task("first", "CREATE OR REPLACE TABLE silver.first AS SELECT 1 AS one"),
            sql_task("needs_input", "CREATE OR REPLACE TABLE silver.copied AS SELECT * FROM silver.input", "first"),
            sql_task(
                "last", "CREATE OR REPLACE TABLE gold.last AS SELECT count(*) AS n FROM silver.copied", "needs_input"
            ),
        ],
    )
    failed = run_to_end(svc, owner, job_id)
    assert states(failed) == {"first": "succeeded", "needs_input": "failed", "last": "skipped"}
    first_run = failed.tasks[0]["run_id"]
    with pytest.raises(Conflict):
        job_runs.repair_job_run(
            svc, owner, run_to_end(svc, owner, create(svc, owner, "ok", [sql_task("a", "SELECT 1")])).run_id
        )

    maker = create(
        svc, owner, "maker", [sql_task("make", "CREATE OR REPLACE TABLE silver.input AS SELECT id FROM range(4)")]
    )
    assert run_to_end(svc, owner, maker).state == "succeeded"
    job_runs.repair_job_run(svc, owner, failed.run_id)
    repaired = wait_end(svc, owner, failed.run_id)
    assert (repaired.run_id, repaired.state, repaired.repair) == (failed.run_id, "succeeded", 1)
    assert set(states(repaired).values()) == {"succeeded"}
    assert repaired.tasks[0]["run_id"] == first_run  # not run again
    assert repaired.tasks[2]["values"]["rows"] == 1
