"""Jobs (REST: pipelines): definitions of a tenant, and the schedule cursor the ticker advances.

A scheduled tick is taken in one transaction that holds the job's row (:func:`hold_ticks`), checks
that ``next_fire_at`` is still the tick, moves it on (:func:`move_ticks`) and queues the tick's run:
of any number of workers seeing the same due tick, exactly one takes it.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, select, update
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


def due_job_ids(session: Session, /, *, now: datetime, limit: int = 500) -> list[str]:
    """Unpaused scheduled jobs whose next tick has come, soonest first (a plain read)."""
    return list(
        session.scalars(
            select(Job.id)
            .where(Job.next_fire_at.is_not(None), Job.next_fire_at <= now, Job.paused.is_(False))
            .order_by(Job.next_fire_at, Job.id)
            .limit(limit)
        )
    )


def due_jobs(session: Session, job_ids: Collection[str], /, *, now: datetime) -> list[Job]:
    """Those of ``job_ids`` whose next tick has come, unpaused (a plain read: the ticker plans their
    runs before it takes any lock, and :func:`hold_ticks` checks the plan)."""
    return list(
        session.scalars(
            select(Job)
            .where(
                Job.id.in_(list(job_ids)),
                Job.next_fire_at.is_not(None),
                Job.next_fire_at <= now,
                Job.paused.is_(False),
            )
            .order_by(Job.next_fire_at, Job.id)
        )
    )


def hold_ticks(session: Session, job_ids: Collection[str], /) -> dict[str, tuple[datetime | None, int, bool]]:
    """Job id -> (next tick, version, paused) of ``job_ids`` as they stand now, held until the
    transaction ends: PostgreSQL locks the rows and skips those another worker holds (it is firing
    them), so two workers take disjoint ticks; on SQLite the transaction's write lock holds them all."""
    rows = session.execute(
        select(Job.id, Job.next_fire_at, Job.version, Job.paused)
        .where(Job.id.in_(list(job_ids)))
        .with_for_update(skip_locked=True)
    )
    return {job_id: (tick, version, paused) for job_id, tick, version, paused in rows}


def move_ticks(session: Session, moves: list[tuple[str, datetime, datetime | None]], /) -> None:
    """Move each (job id, tick, next tick) cursor on, in one statement; the rows are held
    (:func:`hold_ticks`), so each moves (the tick in the condition guards against misuse)."""
    if not moves:
        return
    table = cast(Table, Job.__table__)  # Core: one executemany, no ORM bookkeeping per row
    session.execute(
        update(table)
        .where(table.c.id == bindparam("job_id"), table.c.next_fire_at == bindparam("tick"))
        .values(next_fire_at=bindparam("following"), updated_at=utcnow()),
        [{"job_id": job_id, "tick": tick, "following": following} for job_id, tick, following in moves],
    )


def next_tick(session: Session, /) -> datetime | None:
    """The soonest next tick of any unpaused scheduled job (a plain read)."""
    return session.scalar(
        select(func.min(Job.next_fire_at)).where(Job.next_fire_at.is_not(None), Job.paused.is_(False))
    )


def set_paused(session: Session, job: Job, /, *, paused: bool, next_fire_at: datetime | None) -> Job:
    job.paused = paused
    job.next_fire_at = next_fire_at
    job.updated_at = utcnow()
    session.flush()
    return job
