"""The run model on both stores: claims, progress, waits, cancels, timeouts, sweeps, several workers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from servicetsunami.errors import Conflict, NotFound
from servicetsunami.runs.base import KindPolicy, Ticker
from servicetsunami.runs.local.launcher import LocalLauncher
from servicetsunami.services.container import Services
from servicetsunami.services.pipelines import jobs
from servicetsunami.services.runs import execute
from servicetsunami.services.runs import service as runs
from servicetsunami.store.models import Run, utcnow
from servicetsunami.store.repositories import jobs as jobs_repo
from servicetsunami.store.repositories import runs as runs_repo
from servicetsunami.tenancy import Principal, Scope
from tests.helpers import make_principal
from tests.integration.runs.support import EXECUTED, settings_for

DEADLINE = 30.0


@pytest.fixture
def svc(tmp_path: Path, database_url: str) -> Iterator[Services]:
    services = Services.open(settings_for(tmp_path / "home", database_url))
    try:
        yield services
    finally:
        services.close()


@pytest.fixture
def owner(svc: Services) -> Principal:
    return make_principal(svc, "acme")[0]


def _state(svc: Services, run_id: str) -> str:
    with svc.store.session() as session:
        return runs_repo.get_run(session, run_id, tenant_id=None).state


def _wait_until(svc: Services, run_id: str, states: set[str]) -> str:
    deadline = time.monotonic() + DEADLINE
    while (state := _state(svc, run_id)) not in states:
        assert time.monotonic() < deadline, f"run {run_id} still {state}"
        svc.launcher.wait_change(0.1)
    return state


def test_a_submitted_run_is_executed_and_its_result_and_progress_are_kept(svc: Services, owner: Principal) -> None:
    run_id = runs.submit(svc, owner, "test_echo", params={"x": 1})
    seen: list[str] = []
    run = runs.wait_for_run(svc, owner, run_id, timeout=DEADLINE, on_progress=lambda r: seen.append(r.state))
    assert (run.state, run.result, run.attempts) == ("succeeded", {"echo": {"x": 1}}, 1)
    assert (run.progress.done, run.progress.total, run.progress.unit) == (1, 1, "steps")
    assert run.finished_at is not None and run.duration_seconds is not None
    assert set(seen) <= {"queued", "running"}


def test_a_thread_that_executed_a_run_executes_the_next_in_a_context_of_its_own(
    svc: Services, owner: Principal
) -> None:
    first = runs.wait_for_run(svc, owner, runs.submit(svc, owner, "test_context", params={}), timeout=DEADLINE)
    deadline = time.monotonic() + DEADLINE
    while svc.launcher._pool._idle == 0:  # type: ignore[attr-defined]  # its thread waits for the next run
        assert time.monotonic() < deadline, "the thread of the first run never became idle"
        time.sleep(0.01)
    second = runs.wait_for_run(svc, owner, runs.submit(svc, owner, "test_context", params={}), timeout=DEADLINE)
    assert first.result is not None and second.result is not None
    assert second.result["thread"] == first.result["thread"]  # the same thread, kept idle in between
    assert (first.result["found"], second.result["found"]) == ("unset", "unset")


def test_another_tenant_cannot_see_list_or_cancel_a_run(svc: Services, owner: Principal) -> None:
    other = make_principal(svc, "globex")[0]
    run_id = runs.submit(svc, owner, "test_block", params={})
    try:
        with pytest.raises(NotFound):
            runs.get_run(svc, other, run_id)
        with pytest.raises(NotFound):
            runs.cancel_run(svc, other, run_id)
        assert runs.list_runs(svc, other) == []
        assert [r.run_id for r in runs.list_runs(svc, owner, kind="test_block")] == [run_id]
    finally:
        runs.cancel_run(svc, owner, run_id)


def test_a_wait_is_bounded_and_a_cancel_stops_the_run(svc: Services, owner: Principal) -> None:
    run_id = runs.submit(svc, owner, "test_block", params={})
    _wait_until(svc, run_id, {"running"})
    waited = runs.wait_for_run(svc, owner, run_id, timeout=0.2)
    assert waited.state == "running" and waited.hint
    canceled = runs.cancel_run(svc, owner, run_id)
    assert (canceled.state, canceled.error_code) == ("canceled", "cancelled")
    with pytest.raises(Conflict):
        runs.cancel_run(svc, owner, run_id)


def test_a_wait_without_progress_reads_only_the_state_until_it_returns_and_not_another_tenants_run(
    svc: Services, owner: Principal, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = runs.submit(svc, owner, "test_block", params={})
    _wait_until(svc, run_id, {"running"})
    whole: list[str] = []
    get_run = runs.get_run
    monkeypatch.setattr(runs, "get_run", lambda *args: whole.append(args[2]) or get_run(*args))
    waited = runs.wait_for_run(svc, owner, run_id, timeout=0.3, poll_seconds=0.02)  # about 15 looks
    assert (waited.state, whole) == ("running", [run_id])
    with pytest.raises(NotFound):
        runs.wait_for_run(svc, make_principal(svc, "globex")[0], run_id, timeout=0.3)
    assert runs.cancel_run(svc, owner, run_id).state == "canceled"


def test_only_the_ends_of_followed_runs_are_kept_in_memory_and_each_is_taken_once(
    svc: Services, owner: Principal
) -> None:
    followed = runs.submit(svc, owner, "test_block", params={})
    execute.follow_ends([followed])
    _wait_until(svc, followed, {"running"})
    runs.cancel_run(svc, owner, followed)
    unfollowed = runs.submit(svc, owner, "test_echo", params={})
    for run_id in (followed, unfollowed):
        assert runs.wait_for_run(svc, owner, run_id, timeout=DEADLINE).finished
    deadline = time.monotonic() + DEADLINE
    while any(svc.launcher.local_run(run_id) is not None for run_id in (followed, unfollowed)):
        assert time.monotonic() < deadline, "the runs were still executing"  # their ends recorded, then let go
        svc.launcher.wait_change(0.1)
    written = execute.take_end(followed)
    assert written is not None and (written["state"], written["error_code"]) == ("canceled", "cancelled")
    assert (execute.take_end(followed), execute.take_end(unfollowed)) == (None, None)


def test_a_queued_run_is_canceled_before_it_starts(svc: Services, owner: Principal) -> None:
    with svc.store.session() as session:  # queued without waking a worker
        run_id = runs_repo.create_run(
            session, tenant_id=owner.tenant_id, kind="test_echo", subject="x", role="admin", params={}
        ).id
    assert runs.cancel_run(svc, owner, run_id).state == "canceled"
    runs.ensure_worker(svc)
    svc.launcher.kick()
    assert runs.wait_for_run(svc, owner, run_id, timeout=0.5).attempts == 0
    assert not [r for r, _ in EXECUTED if r == run_id]


def test_a_run_past_its_timeout_is_stopped_and_ends_timed_out(svc: Services, owner: Principal) -> None:
    run_id = runs.submit(svc, owner, "test_block", params={}, timeout_seconds=0.5)
    run = runs.wait_for_run(svc, owner, run_id, timeout=DEADLINE)
    assert (run.state, run.error_code) == ("timed_out", "timed_out")


def test_an_unexpected_error_fails_the_run_without_showing_its_details(svc: Services, owner: Principal) -> None:
    run = runs.wait_for_run(svc, owner, runs.submit(svc, owner, "test_crash", params={}), timeout=DEADLINE)
    assert (run.state, run.error_code) == ("failed", "internal_error")
    assert run.error is not None and "secret" not in run.error


def _stale(svc: Services, run_id: str) -> None:
    """Make a running run look as if its process died long ago."""
    with svc.store.session() as session:
        session.execute(update(Run).where(Run.id == run_id).values(heartbeat_at=utcnow() - timedelta(hours=1)))


def test_a_sweep_fails_a_run_whose_worker_stopped_beating_and_requeues_one_safe_to_retry(
    svc: Services, owner: Principal
) -> None:
    with svc.store.session() as session:
        plain = runs_repo.create_run(
            session, tenant_id=owner.tenant_id, kind="test_block", subject="x", role="admin", params={}
        ).id
        safe = runs_repo.create_run(
            session,
            tenant_id=owner.tenant_id,
            kind="test_block_requeue",
            subject="x",
            role="admin",
            params={},
            max_attempts=2,
        ).id
    dead = LocalLauncher(svc.store, svc.settings.runs)  # claims without executing: a worker about to die
    with svc.store.session(write_lock=True) as session:
        assert runs_repo.claim_next(session, kinds=["test_block"], worker=dead.worker_id) is not None
        assert runs_repo.claim_next(session, kinds=["test_block_requeue"], worker=dead.worker_id) is not None
    _stale(svc, plain)
    _stale(svc, safe)
    runs.ensure_worker(svc)
    changed = dict(svc.launcher.sweep())
    assert changed.get(plain) == "failed" or _state(svc, plain) == "failed"
    failed = runs.get_run(svc, owner, plain)
    assert failed.error_code == "worker_lost"
    # The safe one went back to the queue and this worker takes it (its second attempt).
    assert _wait_until(svc, safe, {"running"}) == "running"
    assert runs.get_run(svc, owner, safe).attempts == 2
    runs.cancel_run(svc, owner, safe)


def test_a_sweep_leaves_a_run_this_worker_is_executing_even_when_its_heartbeat_came_late(
    svc: Services, owner: Principal
) -> None:
    run_id = runs.submit(svc, owner, "test_block", params={})
    assert _wait_until(svc, run_id, {"running"}) == "running"
    _stale(svc, run_id)  # as if the heartbeat thread had not had the CPU for an hour
    assert svc.launcher.sweep() == []
    assert _state(svc, run_id) == "running"
    runs.cancel_run(svc, owner, run_id)
    assert _wait_until(svc, run_id, {"canceled"}) == "canceled"


def test_many_concurrent_claims_of_one_run_have_exactly_one_winner(svc: Services, owner: Principal) -> None:
    with svc.store.session() as session:
        runs_repo.create_run(session, tenant_id=owner.tenant_id, kind="test_echo", subject="x", role="a", params={})
    barrier = threading.Barrier(8)
    winners: list[str] = []

    def claim(i: int) -> None:
        barrier.wait(timeout=10)
        with svc.store.session(write_lock=True) as session:
            if runs_repo.claim_next(session, kinds=["test_echo"], worker=f"w{i}") is not None:
                winners.append(f"w{i}")

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE)
    assert len(winners) == 1


def test_two_workers_on_one_store_never_execute_the_same_run(
    tmp_path: Path, database_url: str, svc: Services, owner: Principal
) -> None:
    second = Services.open(settings_for(tmp_path / "home", database_url))  # another process's view
    try:
        runs.ensure_worker(second)
        run_ids = [runs.submit(svc, owner, "test_echo", params={"i": i}) for i in range(40)]
        for run_id in run_ids:
            assert runs.wait_for_run(svc, owner, run_id, timeout=DEADLINE).state == "succeeded"
    finally:
        second.close()
    executed = [(r, w) for r, w in EXECUTED if r in set(run_ids)]
    assert sorted(r for r, _ in executed) == sorted(run_ids)  # each exactly once
    assert {w for _, w in executed} <= {svc.launcher.worker_id, second.launcher.worker_id}


def test_tickers_keep_their_period_while_claiming_waits_for_the_store(tmp_path: Path) -> None:
    svc = Services.open(settings_for(tmp_path / "home", ""))  # SQLite: a held write lock makes a claim wait
    launcher = LocalLauncher(svc.store, svc.settings.runs)
    calls: list[float] = []
    fifth = threading.Event()

    def tick() -> None:
        calls.append(time.monotonic())
        if len(calls) >= 5:
            fifth.set()

    try:
        owner = make_principal(svc, "acme")[0]
        with svc.store.session() as session:
            runs_repo.create_run(
                session, tenant_id=owner.tenant_id, kind="test_echo", subject="x", role="admin", params={}
            )
        with svc.store.session(write_lock=True) as session:
            session.execute(update(Run).where(Run.id == "none").values(error=None))  # takes the write lock
            launcher.start(lambda run: None, kinds={"test_echo": KindPolicy()}, tickers=[Ticker(0.05, tick)])
            # The dispatcher waits for the lock (up to the 5 s busy timeout) to claim the queued run; the
            # ticker goes on meanwhile.
            assert fifth.wait(3.0), f"the ticker was called {len(calls)} time(s) while claiming waited"
    finally:
        launcher.stop(timeout=10)
        svc.close()


def test_a_wait_for_one_run_sleeps_through_other_runs_changes_and_wakes_on_its_own(svc: Services) -> None:
    launcher = svc.launcher
    others = threading.Event()

    def busy() -> None:  # other runs change all the time
        while not others.is_set():
            launcher.notify("another-run")
            others.wait(0.005)

    thread = threading.Thread(target=busy)
    thread.start()
    try:
        started = time.monotonic()
        launcher.wait_change(0.3, run_id="mine")
        assert time.monotonic() - started >= 0.3  # none of them ended the wait

        seen = launcher.changes()
        launcher.notify("mine")
        started = time.monotonic()
        launcher.wait_change(DEADLINE, after=seen, run_id="mine")  # its change came since: no wait
        assert time.monotonic() - started < DEADLINE / 2

        seen = launcher.changes()
        launcher.notify()  # a change not about any run counts for every waiter
        launcher.wait_change(DEADLINE, after=seen, run_id="mine")
        assert time.monotonic() - started < DEADLINE / 2
    finally:
        others.set()
        thread.join()


def test_a_run_and_a_job_started_with_fewer_scopes_than_the_role_act_later_as_the_role_those_fit(
    svc: Services,
) -> None:
    admin = make_principal(svc, "acme", "admin")[0]
    narrowed = replace(admin, scopes=frozenset({Scope.READ, Scope.WRITE}))  # an OAuth app granted read write
    run_id = runs.submit(svc, narrowed, "test_echo", params={})
    job = jobs.create_job(
        svc, narrowed, {"name": "j", "tasks": [{"task_key": "t", "kind": "sql", "config": {"sql": "SELECT 1 AS x"}}]}
    )
    with svc.store.session() as session:
        assert runs_repo.get_run(session, run_id, tenant_id=None).role == "engineer"
        assert jobs_repo.get_job(session, job.job_id, tenant_id=admin.tenant_id).meta["role"] == "engineer"
