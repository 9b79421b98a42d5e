"""Jobs (REST: pipelines): definitions of a tenant, and the schedule cursor the ticker advances.

A scheduled tick is taken by :func:`take_tick`, a compare-and-set on ``next_fire_at``: of any number
of workers seeing the same due tick, exactly one moves the cursor on and queues the tick's run in
the same transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from servicetsunami.errors import Conflict, NotFound
from servicetsunami.store.models import Job, utcnow
from servicetsunami.store.repositories._keyset import bytewise, keyset


def create_job(
    session: Session,
    /,
    *,
    tenant_id: str,
    name: str,
    definition: dict[str, Any],
    schedule_cron: str | None,
    schedule_timezone: str | None,
    paused: bool,
    next_fire_at: datetime | None,
    created_by: str,
) -> Job:
    job = Job(
        tenant_id=tenant_id,
        name=name,
        definition=definition,
        version=1,
        schedule_cron=schedule_cron,
        schedule_timezone=schedule_timezone,
        paused=paused,
        next_fire_at=next_fire_at,
        created_by=created_by,
    )
    try:
        with session.begin_nested():
            session.add(job)
    except IntegrityError:
        raise Conflict(f"a job named {name!r} already exists") from None
    return job


def get_job(session: Session, job_id: str, /, *, tenant_id: str | None) -> Job:
    """The job, if it belongs to ``tenant_id`` (None: the service, which sees all)."""
    job = session.get(Job, job_id)
    if job is None or (tenant_id is not None and job.tenant_id != tenant_id):
        raise NotFound(f"job {job_id} does not exist")
    return job


def find_job_by_name(session: Session, name: str, /, *, tenant_id: str) -> Job | None:
    return session.scalars(select(Job).where(Job.tenant_id == tenant_id, Job.name == name)).first()


def list_jobs(
    session: Session, /, *, tenant_id: str, after: tuple[str, str] | None = None, limit: int | None = None
) -> list[Job]:
    """By name; a page holds up to ``limit + 1`` jobs (the extra one says another page follows)."""
    query = select(Job).where(Job.tenant_id == tenant_id)
    query = keyset(query, (bytewise(Job.name), bytewise(Job.id)), after=after, limit=limit)
    return list(session.scalars(query))


def update_job(
    session: Session,
    job: Job,
    /,
    *,
    name: str,
    definition: dict[str, Any],
    schedule_cron: str | None,
    schedule_timezone: str | None,
    paused: bool,
    next_fire_at: datetime | None,
) -> Job:
    job.name = name
    job.definition = definition
    job.version += 1
    job.schedule_cron = schedule_cron
    job.schedule_timezone = schedule_timezone
    job.paused = paused
    job.next_fire_at = next_fire_at
    job.updated_at = utcnow()
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(f"a job named {name!r} already exists") from None
    return job


def delete_job(session: Session, job_id: str, /, *, tenant_id: str) -> None:
    get_job(session, job_id, tenant_id=tenant_id)
    session.execute(delete(Job).where(Job.id == job_id, Job.tenant_id == tenant_id))


def due_jobs(session: Session, /, *, now: datetime, limit: int = 500) -> list[tuple[str, datetime]]:
    """(job id, due tick) of unpaused scheduled jobs whose next tick has come (a plain read)."""
    rows = session.execute(
        select(Job.id, Job.next_fire_at)
        .where(Job.next_fire_at.is_not(None), Job.next_fire_at <= now, Job.paused.is_(False))
        .order_by(Job.next_fire_at)
        .limit(limit)
    )
    return [(job_id, tick) for job_id, tick in rows if tick is not None]


def next_tick(session: Session, /) -> datetime | None:
    """The soonest next tick of any unpaused scheduled job (a plain read)."""
    return session.scalar(
        select(func.min(Job.next_fire_at)).where(Job.next_fire_at.is_not(None), Job.paused.is_(False))
    )


def take_tick(session: Session, job_id: str, /, *, tick: datetime, next_fire_at: datetime | None) -> bool:
    """Move the job's cursor from ``tick`` to ``next_fire_at``; True for the one caller that did."""
    done = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.next_fire_at == tick, Job.paused.is_(False))
        .values(next_fire_at=next_fire_at)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(done, "rowcount", 0) or 0) == 1


def set_paused(session: Session, job: Job, /, *, paused: bool, next_fire_at: datetime | None) -> Job:
    job.paused = paused
    job.next_fire_at = next_fire_at
    job.updated_at = utcnow()
    session.flush()
    return job
