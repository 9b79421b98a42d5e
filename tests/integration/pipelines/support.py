"""What the pipelines tests share: a service container with short beats, a job factory, waits."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from servicetsunami.services.container import Services
from servicetsunami.services.pipelines import job_runs, jobs
from servicetsunami.services.pipelines.job_runs import JobRunPublic
from servicetsunami.settings import Settings
from servicetsunami.tenancy import Principal
from tests.integration.runs.support import FAST_RUNS

DEADLINE = 60.0


def settings_for(home: Path, database_url: str = "", **jobs_settings: Any) -> Settings:
    return Settings(  # type: ignore[call-arg]  # pydantic-settings' _env_file option
        home=home, database_url=database_url, runs=FAST_RUNS, jobs=jobs_settings, _env_file=None
    )


def sql_task(key: str, sql: str, *depends_on: str, **extra: Any) -> dict[str, Any]:
    return {"task_key": key, "kind": "sql", "depends_on": list(depends_on), "config": {"sql": sql}, **extra}


def create(svc: Services, owner: Principal, name: str, tasks: list[dict[str, Any]], **extra: Any) -> str:
    return jobs.create_job(svc, owner, {"name": name, "tasks": tasks, **extra}).job_id


def run_to_end(svc: Services, owner: Principal, job_id: str, **parameters: str) -> JobRunPublic:
    run_id = job_runs.start_job_run(svc, owner, job_id, parameters=parameters)
    return wait_end(svc, owner, run_id)


def wait_end(svc: Services, owner: Principal, run_id: str) -> JobRunPublic:
    run = job_runs.wait_job_run(svc, owner, run_id, timeout=DEADLINE)
    assert run.finished_at is not None, f"job run {run_id} still {run.state}: {run.tasks}"
    return run


def states(run: JobRunPublic) -> dict[str, str]:
    return {t["task_key"]: t["state"] for t in run.tasks}


def wait_for(predicate: Any, svc: Services, what: str, deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not predicate():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        svc.launcher.wait_change(0.1)
