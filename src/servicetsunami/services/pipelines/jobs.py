"""Jobs as the doors use them: create, get, list, update, delete, pause and resume.

A definition is validated (:func:`~.spec.validate_job`) before it is stored; the stored one is the
normalised shape, whichever shape came in. A job runs as its creator with the role they had.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from servicetsunami.errors import Conflict
from servicetsunami.services.ops import listings
from servicetsunami.services.pipelines import quartz, remote
from servicetsunami.services.pipelines.spec import JobSpec, validate_job
from servicetsunami.store.models import Job, utcnow
from servicetsunami.store.repositories import audit as audit_repo
from servicetsunami.store.repositories import jobs as jobs_repo
from servicetsunami.store.repositories import runs as runs_repo
from servicetsunami.tenancy import Principal, Scope

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

NEXT_FIRE_TIMES = 5
KIND_JOBS = "jobs"  # the listing cache's kind (settings cache.ttl.jobs)


class JobPublic(BaseModel):
    job_id: str
    name: str
    version: int = Field(description="Grows by one on every update; a run records the version it ran")
    definition: dict[str, Any] = Field(description="The job as stored (tasks, parameters, schedule, limits)")
    schedule: dict[str, Any] | None = None
    paused: bool = False
    next_fire_times: list[datetime] = Field(default_factory=list, description="Next scheduled ticks, UTC")
    orchestrator: Literal["service", "databricks"] = Field(
        "service",
        description="Who runs the DAG: this service's runner (on the Databricks engine its statements still "
        "run on the warehouse) or a Databricks workspace job",
    )
    databricks_job_id: int | None = Field(None, description="The workspace job, when Databricks runs it")
    orchestrator_reason: str | None = Field(
        None, description="On the Databricks engine: why this service runs the job rather than the workspace"
    )
    created_by: str
    created_at: datetime
    updated_at: datetime


def create_job(svc: Services, principal: Principal, definition: dict[str, Any], /) -> JobPublic:
    """Store a new job of the caller's tenant (:class:`~servicetsunami.errors.InvalidJob` says why not)."""
    principal.require(Scope.WRITE)
    spec = validate_job(definition, catalog=principal.catalog)
    with svc.store.session(write_lock=True) as session:
        job = jobs_repo.create_job(
            session,
            tenant_id=principal.tenant_id,
            name=spec.name,
            definition=spec.model_dump(mode="json"),
            created_by=principal.subject,
            **_schedule_columns(spec),
        )
        job.meta = {"role": principal.run_role.value}
        session.flush()
        _push(svc, principal, job, spec, new=True)
        _audit(session, principal, "create_job", job)
        created = job_public(job)
    listings.invalidate(svc, principal.tenant_id, KIND_JOBS)  # after the commit, so no stale read is cached anew
    return created


def update_job(svc: Services, principal: Principal, job_id: str, definition: dict[str, Any], /) -> JobPublic:
    """Replace a job's definition (runs under way keep the version they started with)."""
    principal.require(Scope.WRITE)
    spec = validate_job(definition, catalog=principal.catalog)
    with svc.store.session(write_lock=True) as session:
        job = jobs_repo.get_job(session, job_id, tenant_id=principal.tenant_id)
        jobs_repo.update_job(
            session, job, name=spec.name, definition=spec.model_dump(mode="json"), **_schedule_columns(spec)
        )
        _push(svc, principal, job, spec)
        _audit(session, principal, "update_job", job)
        updated = job_public(job)
    listings.invalidate(svc, principal.tenant_id, KIND_JOBS)
    return updated


def get_job(svc: Services, principal: Principal, job_id: str, /) -> JobPublic:
    principal.require(Scope.READ)
    with svc.store.session() as session:
        return job_public(jobs_repo.get_job(session, job_id, tenant_id=principal.tenant_id))


def list_jobs(
    svc: Services, principal: Principal, /, *, after: tuple[str, str] | None = None, limit: int | None = None
) -> list[JobPublic]:
    """The tenant's jobs by name; with ``limit``, one page plus the next job if there is one."""
    principal.require(Scope.READ)

    def load() -> list[JobPublic]:
        with svc.store.session() as session:
            rows = jobs_repo.list_jobs(session, tenant_id=principal.tenant_id, after=after, limit=limit)
            return [job_public(j) for j in rows]

    return listings.cached(svc, KIND_JOBS, principal, (after, limit), load)


def delete_job(svc: Services, principal: Principal, job_id: str, /) -> None:
    """Delete a job; refused (Conflict) while one of its runs is queued or running. Its run history stays."""
    principal.require(Scope.WRITE)
    with svc.store.session(write_lock=True) as session:
        job = jobs_repo.get_job(session, job_id, tenant_id=principal.tenant_id)
        active = runs_repo.count_active(session, tenant_id=principal.tenant_id, kind="job_run", resource_id=job_id)
        if active:
            raise Conflict(f"job {job_id} has {active} run(s) under way; cancel them first")
        _audit(session, principal, "delete_job", job)
        api = remote.jobs_api(svc)
        if api is not None and job.meta.get(remote.META_JOB_ID) is not None:
            api.delete(int(job.meta[remote.META_JOB_ID]))
        jobs_repo.delete_job(session, job_id, tenant_id=principal.tenant_id)
    listings.invalidate(svc, principal.tenant_id, KIND_JOBS)


def set_paused(svc: Services, principal: Principal, job_id: str, /, *, paused: bool) -> JobPublic:
    """Pause or resume a job's schedule; resuming starts from the next tick after now (no catch-up)."""
    principal.require(Scope.WRITE)
    with svc.store.session(write_lock=True) as session:
        job = jobs_repo.get_job(session, job_id, tenant_id=principal.tenant_id)
        spec = JobSpec.model_validate(job.definition)
        if spec.schedule is None:
            raise Conflict(f"job {job_id} has no schedule to pause or resume")
        spec.schedule.pause_status = "PAUSED" if paused else "UNPAUSED"
        job.definition = spec.model_dump(mode="json")
        jobs_repo.set_paused(session, job, paused=paused, next_fire_at=_schedule_columns(spec)["next_fire_at"])
        _push(svc, principal, job, spec)
        _audit(session, principal, "pause_job" if paused else "resume_job", job)
        changed = job_public(job)
    listings.invalidate(svc, principal.tenant_id, KIND_JOBS)
    return changed


def job_public(job: Job) -> JobPublic:
    spec = JobSpec.model_validate(job.definition)
    times: list[datetime] = []
    remote_id = job.meta.get(remote.META_JOB_ID)
    if spec.schedule is not None and not job.paused:
        schedule = quartz.parse(spec.schedule.quartz_cron_expression, spec.schedule.timezone_id)
        if remote_id is not None:  # the workspace fires it
            times = schedule.next_times(utcnow(), NEXT_FIRE_TIMES)
        elif job.next_fire_at is not None:
            times = [job.next_fire_at, *schedule.next_times(job.next_fire_at, NEXT_FIRE_TIMES - 1)]
    return JobPublic(
        job_id=job.id,
        name=job.name,
        version=job.version,
        definition=dict(job.definition),
        schedule=spec.schedule.model_dump(mode="json") if spec.schedule else None,
        paused=job.paused,
        next_fire_times=times,
        orchestrator="service" if remote_id is None else "databricks",
        databricks_job_id=None if remote_id is None else int(remote_id),
        orchestrator_reason=job.meta.get(remote.META_SERVICE_REASON),
        created_by=job.created_by,
        created_at=job.created_at,
        updated_at=job.updated_at,
    )


def _push(svc: Services, principal: Principal, job: Job, spec: JobSpec, /, *, new: bool = False) -> None:
    """On the Databricks engine: create or replace the job's workspace job (the workspace fires its
    schedule, so the local ticker is given no next tick), or, for a job the Jobs API cannot express,
    keep it with this service's runner (and remove the workspace job it had)."""
    api = remote.jobs_api(svc)
    if api is None:
        return
    remote_id = job.meta.get(remote.META_JOB_ID)
    reason = remote.service_reason(svc, principal, spec)
    meta = {k: v for k, v in job.meta.items() if k not in (remote.META_JOB_ID, remote.META_SERVICE_REASON)}
    if reason is not None:
        if remote_id is not None:
            _leave_workspace(svc, principal, job, int(remote_id), api)
        job.meta = {**meta, remote.META_SERVICE_REASON: reason}
        return
    settings = remote.compile_job(svc, principal, job.id, spec, api)
    if new or remote_id is None:
        remote_id = api.create(settings)
    else:
        api.reset(int(remote_id), settings)
    job.meta = {**meta, remote.META_JOB_ID: remote_id}
    job.next_fire_at = None


def _leave_workspace(svc: Services, principal: Principal, job: Job, remote_id: int, api: Any, /) -> None:
    """Delete the workspace job of a job that now runs in this service, unless a run of it is under way
    or another workspace job starts it (either would be cut off)."""
    with svc.store.session() as session:
        active = runs_repo.count_active(session, tenant_id=principal.tenant_id, kind="job_run", resource_id=job.id)
        parents = [
            other.name
            for other in jobs_repo.list_jobs(session, tenant_id=principal.tenant_id)
            if other.id != job.id
            and other.meta.get(remote.META_JOB_ID) is not None
            and any(
                t.get("kind") == "run_job" and str((t.get("config") or {}).get("job_id")) == job.id
                for t in other.definition.get("tasks") or []
            )
        ]
    if active:
        raise Conflict(
            f"job {job.id} has {active} run(s) under way in the workspace; this change moves it to the "
            "service's runner: cancel them or let them end first"
        )
    if parents:
        raise Conflict(
            f"job {job.id} is started from the workspace by {', '.join(sorted(parents))}; this change would "
            "move it to the service's runner, where those jobs cannot start it"
        )
    api.delete(remote_id)


def _schedule_columns(spec: JobSpec) -> dict[str, Any]:
    if spec.schedule is None:
        return {"schedule_cron": None, "schedule_timezone": None, "paused": False, "next_fire_at": None}
    schedule = quartz.parse(spec.schedule.quartz_cron_expression, spec.schedule.timezone_id)
    paused = spec.schedule.pause_status == "PAUSED"
    return {
        "schedule_cron": schedule.expression,
        "schedule_timezone": schedule.timezone,
        "paused": paused,
        "next_fire_at": None if paused else schedule.next_after(utcnow()),
    }


def _audit(session: Any, principal: Principal, action: str, job: Job) -> None:
    audit_repo.record_audit(
        session,
        tenant_id=principal.tenant_id,
        subject=principal.subject,
        action=action,
        target=f"job:{job.id}",
        meta={"name": job.name, "version": job.version},
    )
