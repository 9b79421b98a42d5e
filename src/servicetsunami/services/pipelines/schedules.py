"""Scheduled job runs: every worker's ticker queues the runs of due ticks, exactly once.

Each scheduled job keeps its next tick in ``jobs.next_fire_at``. A worker that finds due ticks
takes them in batches of up to :data:`_BATCH` jobs: it reads the batch's jobs that are still due and
plans their runs outside any lock (the definition, the next tick, the runs' columns), then, in one
short write transaction, holds the jobs' rows, keeps those whose cursor still stands at the planned
tick (same version, not paused), moves those cursors on and queues their runs (``dedupe_key`` = job
id + tick), a statement each. Of any number of workers and restarts, one queues a tick. Workers
start at different batches of the same due list, a batch another worker took reads as empty, and
PostgreSQL skips the rows another worker holds: two workers split the ticks instead of queueing
behind each other. A tick's run is queued (fired) then; when it starts depends
on the free run slots of the workers.

A tick found more than ``jobs.misfire_grace_seconds`` late (the service was down) is skipped, unless
the schedule says ``catch_up`` (then every missed tick runs, up to ``jobs.catch_up_limit``). A job at
its ``max_concurrent_runs`` skips the tick, as Databricks does.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from servicetsunami.errors import TsunamiError
from servicetsunami.services.ops import listings
from servicetsunami.services.pipelines import quartz
from servicetsunami.services.pipelines.job_runs import job_run_values
from servicetsunami.services.pipelines.jobs import KIND_JOBS
from servicetsunami.services.pipelines.runner import JOB_RUN
from servicetsunami.services.pipelines.spec import JobSpec
from servicetsunami.store.models import Job, utcnow
from servicetsunami.store.repositories import jobs as jobs_repo
from servicetsunami.store.repositories import runs as runs_repo

if TYPE_CHECKING:
    from servicetsunami.services.container import Services
    from servicetsunami.settings import JobsSettings

logger = logging.getLogger(__name__)

_BATCH = 50  # jobs whose due ticks are planned together and taken in one write transaction
_MIN_WAKE_SECONDS = 0.05
_SPECS_KEPT = 4096


@dataclass(frozen=True, slots=True)
class _Plan:
    """What taking one job's due tick writes, worked out before any lock is taken."""

    job_id: str
    tenant_id: str
    tick: datetime  # the cursor's value the plan was made for
    version: int
    following: datetime | None  # the cursor's next value (None: the schedule never fires again)
    max_runs: int  # the job's max_concurrent_runs
    runs: list[dict[str, Any]] = field(default_factory=list)  # one job run per tick to queue


def tick(svc: Services, /, *, now: datetime | None = None) -> int:
    """Queue the runs of every due tick; returns how many this worker queued.

    Under load the store's write lock, and each worker's share of its one interpreter, are what
    make ticks late: so the work is done before the lock and the writes are a few statements per
    batch of :data:`_BATCH` jobs."""
    now = now or utcnow()
    with svc.store.session() as session:
        due = jobs_repo.due_job_ids(session, now=now)
    if not due:
        return 0
    batches = [due[begin : begin + _BATCH] for begin in range(0, len(due), _BATCH)]
    first = random.randrange(len(batches))  # workers begin at different batches: they rarely meet on one
    queued = 0
    tenants: set[str] = set()
    for batch in batches[first:] + batches[:first]:
        with svc.store.session() as session:  # a batch another worker took reads as nothing here
            plans = _plan(svc.settings.jobs, jobs_repo.due_jobs(session, batch, now=now), now)
        if not plans:
            continue
        try:
            with svc.store.session(write_lock=True) as session:
                n, taken = _take(session, plans)
        except TsunamiError as exc:  # nothing of the batch was taken: one job at a time, so one cannot hold up the rest
            logger.warning("scheduled runs of %d job(s) not queued together (%s); one by one", len(plans), exc.code)
            n, taken = 0, set()
            for plan in plans:
                try:
                    with svc.store.session(write_lock=True) as session:
                        one, mine = _take(session, [plan])
                except TsunamiError as single:
                    when = plan.tick.isoformat()
                    logger.warning("scheduled run of job %s at %s not queued: %s", plan.job_id, when, single.message)
                    continue
                n, taken = n + one, taken | mine
        queued += n
        tenants |= taken
    for tenant_id in tenants:
        listings.invalidate(svc, tenant_id, KIND_JOBS)  # the listing shows the next ticks
    if queued:
        svc.launcher.kick()
    return queued


def seconds_to_next_tick(svc: Services, /) -> float | None:
    """How long until the soonest tick of any job (None: no job is scheduled): the launcher calls
    :func:`tick` again then rather than a whole ``jobs.tick_seconds`` later."""
    with svc.store.session() as session:
        following = jobs_repo.next_tick(session)
    if following is None:
        return None
    return max(_MIN_WAKE_SECONDS, (following - utcnow()).total_seconds())


def _take(session: Session, plans: list[_Plan]) -> tuple[int, set[str]]:
    """Take the planned ticks whose cursors still stand where they were planned; (runs queued, the
    tenants whose jobs' cursors moved)."""
    held = jobs_repo.hold_ticks(session, [p.job_id for p in plans])
    # A cursor that moved, a new version or a pause: another worker took the tick, or the job changed.
    mine = [p for p in plans if held.get(p.job_id) == (p.tick, p.version, False)]
    if not mine:
        return 0, set()
    active = runs_repo.count_active_by_resource(session, [p.job_id for p in mine if p.runs], kind=JOB_RUN)
    rows: list[dict[str, Any]] = []
    for plan in mine:
        room = max(0, plan.max_runs - active.get(plan.job_id, 0))
        rows += plan.runs[:room]
        if len(plan.runs) > room:
            logger.info(
                "job %s skipped %d tick(s) from %s: max_concurrent_runs reached",
                plan.job_id,
                len(plan.runs) - room,
                plan.tick.isoformat(),
            )
        if not plan.runs:
            logger.info("job %s: tick %s missed while the service was down; not caught up", plan.job_id, plan.tick)
    jobs_repo.move_ticks(session, [(p.job_id, p.tick, p.following) for p in mine])
    runs_repo.create_runs(session, rows)
    return len(rows), {p.tenant_id for p in mine}


def _plan(settings: JobsSettings, due: list[Job], now: datetime) -> list[_Plan]:
    """The plans of the due jobs (a job whose definition no longer reads is logged and left)."""
    ticks_of: dict[tuple[quartz.Schedule, datetime, bool], tuple[list[datetime], datetime | None]] = {}
    plans: list[_Plan] = []
    for job in due:
        if job.next_fire_at is None or job.schedule_cron is None:
            continue
        try:
            spec = _spec(job)
            schedule = _schedule(job.schedule_cron, job.schedule_timezone or "UTC")
            catch_up = spec.schedule is not None and spec.schedule.catch_up
            key = (schedule, job.next_fire_at, catch_up)
            if key not in ticks_of:  # jobs on one schedule share their ticks: worked out once
                ticks_of[key] = _ticks(settings, schedule, job.next_fire_at, now, catch_up=catch_up)
            ticks, following = ticks_of[key]
            runs = [
                job_run_values(
                    job,
                    spec,
                    subject=job.created_by,
                    role=str(job.meta.get("role", "engineer")),
                    parameters={},
                    trigger="schedule",
                    tick=when,
                )
                for when in ticks
            ]
        except (TsunamiError, ValueError) as exc:  # nothing written: the other jobs go on
            logger.warning("scheduled run of job %s at %s not queued: %s", job.id, job.next_fire_at.isoformat(), exc)
            continue
        plans.append(
            _Plan(job.id, job.tenant_id, job.next_fire_at, job.version, following, spec.max_concurrent_runs, runs)
        )
    return plans


def _ticks(
    settings: JobsSettings, schedule: quartz.Schedule, due: datetime, now: datetime, /, *, catch_up: bool
) -> tuple[list[datetime], datetime | None]:
    """(the ticks from ``due`` up to ``now`` to queue runs for, the cursor's next value).

    Every tick from the due one up to now is queued, except (without catch_up) those more than the
    grace late: the service was down then. A worker that is merely slow loses no tick."""
    grace = timedelta(seconds=settings.misfire_grace_seconds)
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
    try:
        following = schedule.next_after(ticks[-1] if capped else max(now, due))
    except StopIteration:  # a schedule with a year field that has passed
        following = None
    return ticks, following


@functools.lru_cache(maxsize=1024)
def _schedule(expression: str, timezone: str, /) -> quartz.Schedule:
    """A stored job's schedule, parsed once per process (a pure function of its text)."""
    return quartz.parse(expression, timezone)


_specs: dict[tuple[str, int], tuple[dict[str, Any], JobSpec]] = {}
_specs_guard = threading.Lock()


def _spec(job: Job) -> JobSpec:
    """The job's definition read as a spec, once per job version and definition (a paused job keeps
    its version but not its definition)."""
    key = (job.id, job.version)
    with _specs_guard:
        known = _specs.get(key)
    if known is not None and known[0] == job.definition:
        return known[1]
    spec = JobSpec.model_validate(job.definition)
    with _specs_guard:
        if len(_specs) >= _SPECS_KEPT:
            _specs.clear()
        _specs[key] = (job.definition, spec)
    return spec
