"""Job runs as the doors use them: run now, status with every task, history, cancel and repair.

A job run is a run of kind ``job_run`` (``resource_id`` the job, ``params`` the definition it runs,
its parameters, its trigger and its repair number); its tasks are ``task_run`` runs whose parent it
is. The earlier API's words for a run's state (Pending, Running, Succeeded, Failed) are in ``status``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from servicetsunami.errors import Conflict, InvalidInput, NotFound
from servicetsunami.services.pipelines import remote
from servicetsunami.services.pipelines.runner import (
    FAILED_STATES,
    JOB_RUN,
    TERMINAL_STATES,
    TaskState,
    children_of,
    task_states,
)
from servicetsunami.services.pipelines.spec import JobSpec
from servicetsunami.services.runs import service as runs
from servicetsunami.services.runs.model import RunProgress, RunPublic, run_public
from servicetsunami.store.models import Job, Run
from servicetsunami.store.repositories import jobs as jobs_repo
from servicetsunami.store.repositories import runs as runs_repo
from servicetsunami.tenancy import Principal, Scope

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

_STATUS = {
    "queued": "Pending",
    "running": "Running",
    "succeeded": "Succeeded",
    "failed": "Failed",
    "canceled": "Canceled",
    "timed_out": "TimedOut",
    "skipped": "Skipped",
}
_REPAIR_ATTEMPTS = 3  # claims a job run may take per repair (a worker that dies hands it on)


class JobRunPublic(BaseModel):
    run_id: str
    job_id: str
    job_name: str
    job_version: int
    state: str = Field(description="queued, running, succeeded, failed, canceled or timed_out")
    status: str = Field(description="The same in the earlier API's words: Pending, Running, Succeeded, Failed, ...")
    trigger: str = Field(description="manual, schedule, run_job (another job's task) or repair")
    scheduled_for: str | None = Field(None, description="The tick a scheduled run was queued for (UTC)")
    parameters: dict[str, str]
    repair: int = Field(0, description="How many times the run was repaired")
    tasks: list[dict[str, Any]] = Field(description="Each task: state, attempts, run_id, values, error")
    progress: RunProgress
    error_code: str | None = None
    error: str | None = None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None = None
    hint: str | None = None


def start_job_run(
    svc: Services,
    principal: Principal,
    job_id: str,
    /,
    *,
    parameters: dict[str, Any] | None = None,
    trigger: str = "manual",
    parent_id: str | None = None,
) -> str:
    """Queue a run of the job now; Conflict when it already has ``max_concurrent_runs`` under way."""
    principal.require(Scope.WRITE)
    with svc.store.session(write_lock=True) as session:
        job = jobs_repo.get_job(session, job_id, tenant_id=principal.tenant_id)
        run = queue_job_run(
            session,
            job,
            tenant_id=principal.tenant_id,
            subject=principal.subject,
            role=principal.run_role.value,
            parameters=parameters or {},
            trigger=trigger,
            parent_id=parent_id,
        )
        if run is None:
            spec = JobSpec.model_validate(job.definition)
            raise Conflict(
                f"job {job_id} already has {spec.max_concurrent_runs} run(s) under way (its max_concurrent_runs)"
            )
        run_id = run.id
    runs.ensure_worker(svc)
    svc.launcher.kick()
    return run_id


def queue_job_run(
    session: Session,
    job: Job,
    /,
    *,
    tenant_id: str,
    subject: str,
    role: str,
    parameters: dict[str, Any],
    trigger: str,
    parent_id: str | None = None,
    tick: datetime | None = None,
) -> Run | None:
    """Create the job run row in ``session`` (None when the job is at its ``max_concurrent_runs``)."""
    spec = JobSpec.model_validate(job.definition)
    unknown = sorted(set(parameters) - set(spec.parameters))
    if unknown:
        declared = ", ".join(sorted(spec.parameters)) or "none"
        raise InvalidInput(f"unknown job parameter(s) {', '.join(unknown)}; the job declares: {declared}")
    active = runs_repo.count_active(session, tenant_id=tenant_id, kind=JOB_RUN, resource_id=job.id)
    if active >= spec.max_concurrent_runs:
        return None
    values = job_run_values(
        job, spec, subject=subject, role=role, parameters=parameters, trigger=trigger, parent_id=parent_id, tick=tick
    )
    return runs_repo.create_run(session, **values)


def job_run_values(
    job: Job,
    spec: JobSpec,
    /,
    *,
    subject: str,
    role: str,
    parameters: dict[str, Any],
    trigger: str,
    parent_id: str | None = None,
    tick: datetime | None = None,
) -> dict[str, Any]:
    """The columns of a queued job run of ``job`` (``spec`` its definition), for
    :func:`~servicetsunami.store.repositories.runs.create_run` or, many at once, ``create_runs``."""
    return {
        "tenant_id": job.tenant_id,
        "kind": JOB_RUN,
        "subject": subject,
        "role": role,
        "params": {
            "job_id": job.id,
            "job_name": job.name,
            "job_version": job.version,
            "definition": dict(job.definition),
            "parameters": {**spec.parameters, **{k: str(v) for k, v in parameters.items()}},
            "trigger": trigger,
            "scheduled_for": tick.isoformat() if tick is not None else None,
            "repair": 0,
            "rerun": [],
            **({remote.META_JOB_ID: job.meta[remote.META_JOB_ID]} if job.meta.get(remote.META_JOB_ID) else {}),
        },
        "resource_id": job.id,
        "parent_id": parent_id,
        "dedupe_key": f"job:{job.id}:{tick.isoformat()}" if tick is not None else None,
        "timeout_seconds": spec.timeout_seconds,
        "max_attempts": _REPAIR_ATTEMPTS,
    }


def run_job(
    svc: Services,
    principal: Principal,
    job_id: str,
    /,
    *,
    parameters: dict[str, Any] | None = None,
    wait_seconds: float = 10.0,
    on_progress: Callable[[JobRunPublic], None] | None = None,
) -> JobRunPublic:
    """Start a run and wait up to ``wait_seconds``; a longer run keeps going (poll its status)."""
    run_id = start_job_run(svc, principal, job_id, parameters=parameters)
    return wait_job_run(svc, principal, run_id, timeout=wait_seconds, on_progress=on_progress)


def wait_job_run(
    svc: Services,
    principal: Principal,
    run_id: str,
    /,
    *,
    timeout: float,
    on_progress: Callable[[JobRunPublic], None] | None = None,
) -> JobRunPublic:
    get_job_run(svc, principal, run_id)  # only job runs of this tenant
    progress = None if on_progress is None else (lambda _run: on_progress(get_job_run(svc, principal, run_id)))
    runs.wait_for_run(svc, principal, run_id, timeout=timeout, on_progress=progress)
    return _with_hint(get_job_run(svc, principal, run_id))


async def await_job_run(
    svc: Services,
    principal: Principal,
    run_id: str,
    /,
    *,
    timeout: float,
    on_progress: Callable[[RunPublic], Awaitable[None]] | None = None,
) -> JobRunPublic:
    await runs.await_run(svc, principal, run_id, timeout=timeout, on_progress=on_progress)
    return _with_hint(get_job_run(svc, principal, run_id))


def get_job_run(svc: Services, principal: Principal, run_id: str, /) -> JobRunPublic:
    """A job run of the caller's tenant with every task's state, output and error."""
    principal.require(Scope.READ)
    run = runs.get_run(svc, principal, run_id)
    if run.kind != JOB_RUN:
        raise NotFound(f"job run {run_id} does not exist")
    with svc.store.session() as session:
        row = runs_repo.get_run(session, run_id, tenant_id=principal.tenant_id)
        params, progress = dict(row.params), dict(row.progress or {})
    spec = JobSpec.model_validate(params["definition"])
    if params.get(remote.META_JOB_ID):
        return _public(run, params, _remote_states(svc, spec, progress))
    states = task_states(
        spec,
        children_of(svc, run_id, tenant_id=principal.tenant_id),
        repair=int(params.get("repair", 0)),
        rerun=set(params.get("rerun", [])),
    )
    return _public(run, params, states)


def list_job_runs(
    svc: Services,
    principal: Principal,
    /,
    *,
    job_id: str | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int | None = None,
) -> list[JobRunPublic]:
    """Job runs of the tenant (of one job), newest first; tasks are listed by ``get_job_run``."""
    principal.require(Scope.READ)
    if job_id is not None:
        with svc.store.session() as session:
            jobs_repo.get_job(session, job_id, tenant_id=principal.tenant_id)
    with svc.store.session() as session:
        rows = runs_repo.list_runs(
            session, tenant_id=principal.tenant_id, kind=JOB_RUN, resource_id=job_id, after=after, limit=limit
        )
        listed = [(run_public(r), dict(r.params)) for r in rows]
    return [_public(run, params, None) for run, params in listed]


def cancel_job_run(svc: Services, principal: Principal, run_id: str, /, *, wait_seconds: float = 30.0) -> JobRunPublic:
    """Stop every running task and mark the rest canceled; a finished run is a Conflict."""
    get_job_run(svc, principal, run_id)
    runs.cancel_run(svc, principal, run_id, wait_seconds=wait_seconds)
    return _with_hint(get_job_run(svc, principal, run_id))


def repair_job_run(
    svc: Services,
    principal: Principal,
    run_id: str,
    /,
    *,
    tasks: list[str] | None = None,
    wait_seconds: float = 10.0,
) -> JobRunPublic:
    """Run the failed, timed-out, canceled and skipped tasks of a finished run again (or ``tasks``),
    and every task downstream of them, as a new attempt of the same run."""
    principal.require(Scope.WRITE)
    current = get_job_run(svc, principal, run_id)
    if current.finished_at is None:
        raise Conflict(f"job run {run_id} is still {current.state}; repair it once it has ended")
    if current.state == "succeeded" and not tasks:
        raise Conflict(f"job run {run_id} succeeded; there is nothing to repair")
    with svc.store.session(write_lock=True) as session:
        row = runs_repo.get_run(session, run_id, tenant_id=principal.tenant_id)
        params = dict(row.params)
        spec = JobSpec.model_validate(params["definition"])
        by_key = {t["task_key"]: t for t in current.tasks}
        if tasks:
            unknown = [k for k in tasks if k not in by_key]
            if unknown:
                raise InvalidInput(f"unknown task(s) {', '.join(unknown)}; the job has: {', '.join(by_key)}")
            chosen = set(tasks)
        else:
            chosen = {k for k, t in by_key.items() if t["state"] in FAILED_STATES or t["state"] == "skipped"}
        rerun = _downstream(spec, chosen)
        if params.get(remote.META_JOB_ID):
            api = remote.jobs_api(svc)
            remote_run = dict(row.progress or {}).get("databricks_run_id")
            if api is None or remote_run is None:
                raise Conflict(f"job run {run_id} never started on the Databricks workspace; run the job again")
            remote.repair(api, int(remote_run), sorted(chosen))
        params.update(repair=int(params.get("repair", 0)) + 1, rerun=sorted(rerun), trigger="repair")
        if not runs_repo.reopen(session, run_id, params=params, max_attempts=row.attempts + _REPAIR_ATTEMPTS):
            raise Conflict(f"job run {run_id} is being repaired already")
    runs.ensure_worker(svc)
    svc.launcher.kick()
    return wait_job_run(svc, principal, run_id, timeout=wait_seconds)


def _remote_states(svc: Services, spec: JobSpec, progress: dict[str, Any]) -> dict[str, TaskState]:
    """A Databricks job run's tasks as the workspace reports them (all pending before it started)."""
    api = remote.jobs_api(svc)
    remote_run = progress.get("databricks_run_id")
    pending = {t.task_key: TaskState(t.task_key, t.kind, list(t.depends_on)) for t in spec.tasks}
    if api is None or remote_run is None:
        return pending
    return {**pending, **remote.remote_states(api.get_run(int(remote_run)))}


def _downstream(spec: JobSpec, chosen: set[str]) -> set[str]:
    out = set(chosen)
    changed = True
    while changed:
        changed = False
        for task in spec.tasks:
            if task.task_key not in out and any(d in out for d in task.depends_on):
                out.add(task.task_key)
                changed = True
    return out


def _public(run: RunPublic, params: dict[str, Any], states: dict[str, TaskState] | None) -> JobRunPublic:
    tasks = [s.public() for s in states.values()] if states is not None else []
    if run.state == "canceled" and run.finished_at is not None:
        # A cancel ends the run at once; the coordinator's last word on its tasks may come after it
        # (or never, when its worker died): whatever had not finished was canceled with the run.
        for task in tasks:
            if task["state"] not in TERMINAL_STATES:
                task["state"] = "canceled"
    return JobRunPublic(
        run_id=run.run_id,
        job_id=str(params.get("job_id")),
        job_name=str(params.get("job_name")),
        job_version=int(params.get("job_version", 1)),
        state=run.state,
        status=_STATUS.get(run.state, run.state),
        trigger=str(params.get("trigger", "manual")),
        scheduled_for=params.get("scheduled_for"),
        parameters=dict(params.get("parameters") or {}),
        repair=int(params.get("repair", 0)),
        tasks=tasks,
        progress=run.progress,
        error_code=run.error_code,
        error=run.error,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration_seconds=run.duration_seconds,
    )


def _with_hint(run: JobRunPublic) -> JobRunPublic:
    if run.finished_at is None:
        run.hint = f"still {run.state}; poll get_job_run_status('{run.run_id}') or cancel_job_run('{run.run_id}')"
    return run
