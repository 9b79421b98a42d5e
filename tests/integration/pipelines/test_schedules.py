"""Schedules on both stores: one run per tick whatever the number of workers, missed ticks skipped
unless the job catches up, pause and resume."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from servicetsunami.services.container import Services
from servicetsunami.services.pipelines import job_runs, jobs, schedules
from servicetsunami.services.runs import service as runs
from servicetsunami.store.models import Job, utcnow
from servicetsunami.tenancy import Principal
from tests.helpers import make_principal
from tests.integration.pipelines.support import settings_for, sql_task, wait_for


@pytest.fixture
def svc(tmp_path: Path, database_url: str) -> Iterator[Services]:
    services = Services.open(settings_for(tmp_path / "home", database_url, tick_seconds=0.2))
    try:
        yield services
    finally:
        services.close()


@pytest.fixture
def owner(svc: Services) -> Principal:
    return make_principal(svc, "acme", role="engineer")[0]


def _scheduled(svc: Services, owner: Principal, job_id: str) -> list[str]:
    found = job_runs.list_job_runs(svc, owner, job_id=job_id, limit=1000)
    return sorted(r.scheduled_for or "" for r in found if r.trigger == "schedule")


def _set_next(svc: Services, job_id: str, when: datetime) -> None:
    with svc.store.session() as session:
        session.execute(update(Job).where(Job.id == job_id).values(next_fire_at=when))


def _tick_together(workers: list[Services], *, now: datetime) -> list[int]:
    """Each worker's :func:`schedules.tick` at the same moment; how many runs each queued."""
    queued = [0] * len(workers)
    start = threading.Barrier(len(workers))

    def tick(i: int) -> None:
        start.wait()
        queued[i] = schedules.tick(workers[i], now=now)

    threads = [threading.Thread(target=tick, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return queued


def _job(svc: Services, owner: Principal, cron: str, **schedule: object) -> str:
    definition = {
        "name": f"every_{abs(hash(cron))}",
        "tasks": [sql_task("ping", "SELECT 1")],
        "max_concurrent_runs": 100,
        "schedule": {"quartz_cron_expression": cron, "timezone_id": "Europe/Berlin", **schedule},
    }
    return jobs.create_job(svc, owner, definition).job_id


def test_a_due_tick_taken_by_many_workers_at_once_queues_exactly_one_run(
    tmp_path: Path, database_url: str, svc: Services, owner: Principal
) -> None:
    second = Services.open(settings_for(tmp_path / "home", database_url))  # another process's view
    try:
        job_id = _job(svc, owner, "0 0 * * * ?")
        due = utcnow().replace(minute=0, second=10, microsecond=0)  # the second after it holds no other tick
        _set_next(svc, job_id, due)
        queued: list[int] = []
        start = threading.Barrier(8)

        def worker(s: Services) -> None:
            start.wait()
            queued.append(schedules.tick(s, now=due + timedelta(seconds=1)))

        threads = [threading.Thread(target=worker, args=(s,)) for s in [svc, second] * 4]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        second.close()
    assert sum(queued) == 1
    assert _scheduled(svc, owner, job_id) == [due.isoformat()]
    following = jobs.get_job(svc, owner, job_id).next_fire_times[0]
    assert following > due and following.minute == 0 and following.second == 0


def test_two_running_workers_fire_every_second_once_without_gaps(
    tmp_path: Path, database_url: str, svc: Services, owner: Principal
) -> None:
    second = Services.open(settings_for(tmp_path / "home", database_url, tick_seconds=0.2))
    try:
        runs.ensure_worker(svc)
        runs.ensure_worker(second)
        job_id = _job(svc, owner, "* * * * * ?")
        wait_for(lambda: len(_scheduled(svc, owner, job_id)) >= 6, svc, "six ticks", deadline=30)
        jobs.set_paused(svc, owner, job_id, paused=True)
    finally:
        second.close()
    ticks = [datetime.fromisoformat(t) for t in _scheduled(svc, owner, job_id)]
    assert len(ticks) == len(set(ticks))
    gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(ticks)}
    assert gaps == {1.0}


def test_ticks_missed_while_the_service_was_down_are_skipped(svc: Services, owner: Principal) -> None:
    job_id = _job(svc, owner, "0 */10 * * * ?")
    first = utcnow().replace(second=0, microsecond=0) - timedelta(hours=3)
    first = first.replace(minute=first.minute - first.minute % 10)
    _set_next(svc, job_id, first)
    now = first + timedelta(hours=1, minutes=5)  # the last tick is 5 minutes old: past the grace
    assert schedules.tick(svc, now=now) == 0
    assert _scheduled(svc, owner, job_id) == []
    assert jobs.get_job(svc, owner, job_id).next_fire_times[0] == first + timedelta(hours=1, minutes=10)


def test_a_worker_that_comes_late_within_the_grace_loses_no_tick(svc: Services, owner: Principal) -> None:
    job_id = _job(svc, owner, "* * * * * ?")
    due = utcnow().replace(microsecond=0) - timedelta(seconds=10)
    _set_next(svc, job_id, due)
    assert schedules.tick(svc, now=due + timedelta(seconds=3, milliseconds=500)) == 4
    assert _scheduled(svc, owner, job_id) == [(due + timedelta(seconds=i)).isoformat() for i in range(4)]


def test_a_job_that_catches_up_runs_every_missed_tick(svc: Services, owner: Principal) -> None:
    job_id = _job(svc, owner, "0 */10 * * * ?", catch_up=True)
    now = utcnow().replace(second=30, microsecond=0)
    first = now.replace(minute=(now.minute // 10) * 10, second=0) - timedelta(hours=1)
    _set_next(svc, job_id, first)
    assert schedules.tick(svc, now=now) == 7
    assert len(_scheduled(svc, owner, job_id)) == 7


def test_a_paused_job_does_not_fire_and_resumes_from_the_next_tick(svc: Services, owner: Principal) -> None:
    job_id = _job(svc, owner, "0 */10 * * * ?")
    paused = jobs.set_paused(svc, owner, job_id, paused=True)
    assert (paused.paused, paused.next_fire_times, paused.schedule and paused.schedule["pause_status"]) == (
        True,
        [],
        "PAUSED",
    )
    assert schedules.tick(svc, now=utcnow() + timedelta(hours=2)) == 0
    resumed = jobs.set_paused(svc, owner, job_id, paused=False)
    assert len(resumed.next_fire_times) == 5 and resumed.next_fire_times[0] > utcnow()
    assert all(t.minute % 10 == 0 and t.second == 0 for t in resumed.next_fire_times)


def test_two_workers_split_a_burst_of_due_ticks_and_queue_each_exactly_once(
    tmp_path: Path, database_url: str, svc: Services, owner: Principal
) -> None:
    second = Services.open(settings_for(tmp_path / "home", database_url))  # another process's view
    ids = [
        jobs.create_job(
            svc,
            owner,
            {
                "name": f"burst_{i}",
                "tasks": [sql_task("ping", "SELECT 1")],
                "max_concurrent_runs": 100,
                "schedule": {"quartz_cron_expression": "0 0 * * * ?", "timezone_id": "UTC"},
            },
        ).job_id
        for i in range(3 * schedules._BATCH)
    ]
    shared = 0
    try:
        # Each round's tick is due a second before the workers look, and the jobs fire hourly: the
        # ticks sit just after an hour's start, so that second never holds another tick of theirs.
        base = utcnow().replace(minute=0, second=10, microsecond=0) - timedelta(hours=1)
        # A round where both workers queue some ticks shows the split. About half the rounds do (the
        # workers may begin at the same batch, and one may hold the write lock for all three), so
        # rounds go on until one does, up to 30.
        for round_ in range(30):
            due = base + timedelta(seconds=round_)
            with svc.store.session() as session:
                session.execute(update(Job).where(Job.id.in_(ids)).values(next_fire_at=due))
            queued = _tick_together([svc, second], now=due + timedelta(seconds=1))
            assert sum(queued) == len(ids)
            shared += all(queued)
            for job_id in ids:
                assert _scheduled(svc, owner, job_id).count(due.isoformat()) == 1
            if shared:
                break
    finally:
        second.close()
    assert shared > 0
