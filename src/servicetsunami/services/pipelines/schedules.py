"""Scheduled job runs: every worker's ticker queues the runs of due ticks, exactly once.

Each scheduled job keeps its next tick in ``jobs.next_fire_at``. A worker that finds a due tick
moves the cursor on with a compare-and-set and, in the same transaction, queues the tick's run
(with ``dedupe_key`` = job id + tick): of any number of workers and restarts, one queues it. A tick
found more than ``jobs.misfire_grace_seconds`` late (the service was down) is skipped, unless the
schedule says ``catch_up`` (then every missed tick runs, up to ``jobs.catch_up_limit``). A job at its
``max_concurrent_runs`` skips the tick, as Databricks does.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from servicetsunami.errors import TsunamiError
from servicetsunami.services.ops import listings
from servicetsunami.services.pipelines import quartz
from servicetsunami.services.pipelines.job_runs import queue_job_run
from servicetsunami.services.pipelines.jobs import KIND_JOBS
from servicetsunami.services.pipelines.spec import JobSpec
from servicetsunami.store.models import utcnow
from servicetsunami.store.repositories import jobs as jobs_repo

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

logger = logging.getLogger(__name__)

_BATCH = 50  # jobs whose due ticks are taken in one write transaction
_MIN_WAKE_SECONDS = 0.05


def tick(svc: Services, /, *, now: datetime | None = None) -> int:
    """Queue the runs of every due tick; returns how many this worker queued.

    The due ticks are taken in write transactions of up to :data:`_BATCH` jobs each rather than one
    per job: under load the store's write lock, not the work, is what makes ticks late."""
    now = now or utcnow()
    with svc.store.session() as session:
        due = jobs_repo.due_jobs(session, now=now)
    queued = 0
    tenants: set[str] = set()
    for begin in range(0, len(due), _BATCH):
        batch = due[begin : begin + _BATCH]
        try:
            with svc.store.session(write_lock=True) as session:
                fired = [_fire(session, svc, job_id, when, now) for job_id, when in batch]
        except TsunamiError as exc:  # nothing of the batch was taken: one job at a time, so one cannot hold up the rest
            logger.warning("scheduled runs of %d job(s) not queued together (%s); one by one", len(batch), exc.code)
            fired = []
            for job_id, when in batch:
                try:
                    with svc.store.session(write_lock=True) as session:
                        fired.append(_fire(session, svc, job_id, when, now))
                except TsunamiError as one:
                    logger.warning(
                        "scheduled run of job %s at %s not queued: %s", job_id, when.isoformat(), one.message
                    )
        for n, tenant_id in fired:
            queued += n
            if tenant_id is not None:
                tenants.add(tenant_id)
    for tenant_id in tenants:
        listings.invalidate(svc, tenant_id, KIND_JOBS)  # the listing shows the next ticks
    if queued:
        svc.launcher.kick()
    return queued


def seconds_to_next_tick(svc: Services, /) -> float | None:
    """How long until the soonest tick of any job (None: no job is scheduled): the dispatcher calls
    :func:`tick` again then rather than a whole ``jobs.tick_seconds`` later."""
    with svc.store.session() as session:
        following = jobs_repo.next_tick(session)
    if following is None:
        return None
    return max(_MIN_WAKE_SECONDS, (following - utcnow()).total_seconds())


def _fire(session: Session, svc: Services, job_id: str, due: datetime, now: datetime) -> tuple[int, str | None]:
    """Take the job's due tick in ``session`` and queue its run(s); (runs queued, the job's tenant
    when its cursor moved)."""
    settings = svc.settings.jobs
    try:
        job = jobs_repo.get_job(session, job_id, tenant_id=None)
        if job.next_fire_at != due or job.paused or job.schedule_cron is None:
            return 0, None  # another worker took it, or it changed meanwhile
        spec = JobSpec.model_validate(job.definition)
        schedule = quartz.parse(job.schedule_cron, job.schedule_timezone or "UTC")
    except (TsunamiError, ValueError) as exc:  # nothing written yet: the other jobs of the batch go on
        logger.warning("scheduled run of job %s at %s not queued: %s", job_id, due.isoformat(), exc)
        return 0, None
    catch_up = spec.schedule is not None and spec.schedule.catch_up
    grace = timedelta(seconds=settings.misfire_grace_seconds)
    # Every tick from the due one up to now is queued, except (without catch_up) those more than
    # the grace late: the service was down then. A worker that is merely slow loses no tick.
    ticks = [due] if catch_up or now - due <= grace else []
    begin = due if catch_up else max(due, now - grace)
    capped = False
    for later in schedule.fire_times(begin):
        if later > now:
            break
        if len(ticks) >= settings.catch_up_limit:
            capped = True
            break
        ticks.append(later)
    following = schedule.next_after(ticks[-1] if capped else max(now, due))
    if not jobs_repo.take_tick(session, job_id, tick=due, next_fire_at=following):
        return 0, None
    queued = 0
    for when in ticks:
        run = queue_job_run(
            session,
            job,
            tenant_id=job.tenant_id,
            subject=job.created_by,
            role=str(job.meta.get("role", "engineer")),
            parameters={},
            trigger="schedule",
            tick=when,
        )
        if run is None:
            logger.info("job %s skipped its %s tick: max_concurrent_runs reached", job_id, when.isoformat())
            continue
        queued += 1
    if not ticks:
        logger.info("job %s: tick %s missed while the service was down; not caught up", job_id, due.isoformat())
    return queued, job.tenant_id
