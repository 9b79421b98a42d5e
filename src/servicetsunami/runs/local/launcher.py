"""The local launcher: claims runs from the system store and executes them in threads of this process.

Three threads of its own: the dispatcher claims queued runs while there is room (woken by
:meth:`LocalLauncher.kick`, else every ``poll_seconds``) and sweeps runs whose worker died (every
``sweep_seconds``); the ticker thread calls the tickers, each on its period or sooner when it asks
(so a schedule's tick is not held up by claiming, nor claiming by a long tick); the beater marks this
process's runs alive, passes cancel requests on, and cancels runs past their timeout. Each claimed
run executes in a thread of its own.

With ``tsunami serve --workers N`` every worker process has one launcher over the same store; the
claim is a compare-and-set in the store, so exactly one of them executes a run.

A coordinator (a job run) may skip the queue for the runs it starts: it holds slots
(:meth:`~LocalLauncher.reserve`), creates the runs already claimed by this worker in the
transaction that counts its limits, and hands them to :meth:`~LocalLauncher.adopt`; they are then
beaten, timed out, canceled and swept like claimed runs. Reserved slots count against
``max_parallel`` and the kinds' limits.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import timedelta

from servicetsunami.errors import TsunamiError
from servicetsunami.runs.base import ClaimedRun, Executor, KindPolicy, Launcher, Ticker
from servicetsunami.settings import RunsSettings
from servicetsunami.store.db import Store
from servicetsunami.store.models import Run, utcnow
from servicetsunami.store.repositories import runs as runs_repo

logger = logging.getLogger(__name__)

_MIN_TICK_SECONDS = 0.01  # a ticker asking to be called again at once still lets the others run


class LocalLauncher(Launcher):
    def __init__(self, store: Store, settings: RunsSettings) -> None:
        self.store = store
        self.settings = settings
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._executor: Executor | None = None
        self._kinds: dict[str, KindPolicy] = {}
        self._active: dict[str, ClaimedRun] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._guard = threading.Lock()
        self._kicked = threading.Event()
        self._stopping = threading.Event()
        self._changed = threading.Condition()
        self._changes = 0  # notify() calls so far
        self._recent: deque[tuple[int, str | None]] = deque(maxlen=256)  # (change number, its run)
        self._loops: list[threading.Thread] = []
        self._tickers: list[Ticker] = []
        self._reserved: dict[str, int] = {}  # slots held by reserve() for runs about to be adopted
        # Whether the last claim found a kind with no free slot: only then can a slot that frees up
        # let a queued run start before the next poll (most runs end with nothing waiting for them).
        self._short_of_slots = False

    # -- the port -----------------------------------------------------------------------------

    def start(self, executor: Executor, /, *, kinds: Mapping[str, KindPolicy], tickers: Sequence[Ticker] = ()) -> None:
        with self._guard:
            if self._loops:
                return
            self._executor = executor
            self._kinds = dict(kinds)
            self._tickers = list(tickers)
            self._stopping.clear()
            self._loops = [
                threading.Thread(target=self._dispatch_loop, name="runs-dispatch", daemon=True),
                threading.Thread(target=self._beat_loop, name="runs-heartbeat", daemon=True),
            ]
            if self._tickers:
                self._loops.append(threading.Thread(target=self._tick_loop, name="runs-tickers", daemon=True))
        for loop in self._loops:
            loop.start()

    @property
    def started(self) -> bool:
        return bool(self._loops)

    def kick(self) -> None:
        self._kicked.set()

    def notify(self, run_id: str | None = None, /) -> None:
        with self._changed:
            self._changes += 1
            self._recent.append((self._changes, run_id))
            self._changed.notify_all()

    def changes(self) -> int:
        return self._changes

    def wait_change(self, timeout: float, /, *, after: int | None = None, run_id: str | None = None) -> None:
        deadline = time.monotonic() + max(0.0, timeout)
        with self._changed:
            seen = self._changes if after is None else after
            while not (self._changes != seen and self._concerns(seen, run_id)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._changed.wait(remaining)

    def _concerns(self, since: int, run_id: str | None) -> bool:
        """Whether a change after ``since`` is about ``run_id`` (any change, without one)."""
        if run_id is None or self._changes - since > len(self._recent):  # some fell out of the window
            return True
        return any(n > since and changed in (None, run_id) for n, changed in self._recent)

    def reserve(self, kind: str, wanted: int, /) -> int:
        with self._guard:
            policy = self._kinds.get(kind)
            if policy is None or not self._loops or self._stopping.is_set() or wanted <= 0:
                return 0
            room = self.settings.max_parallel - len(self._active) - sum(self._reserved.values())
            if policy.max_parallel is not None:
                mine = sum(1 for run in self._active.values() if run.kind == kind) + self._reserved.get(kind, 0)
                room = min(room, policy.max_parallel - mine)
            held = max(0, min(wanted, room))
            self._reserved[kind] = self._reserved.get(kind, 0) + held
            return held

    def adopt(self, run: ClaimedRun, /) -> None:
        thread = threading.Thread(target=self._execute, args=(run,), name=f"run-{run.kind}", daemon=True)
        with self._guard:
            self._reserved[run.kind] = max(0, self._reserved.get(run.kind, 0) - 1)
            stopping = self._stopping.is_set()
            if not stopping:
                self._active[run.id] = run
                self._threads[run.id] = thread
        if stopping:  # stop() came between the reservation and now: leave the run to the next worker
            with self.store.session() as session:
                runs_repo.requeue(session, run.id, worker=self.worker_id)
            self.notify()
            return
        thread.start()

    def release(self, kind: str, count: int, /) -> None:
        if count <= 0:
            return
        with self._guard:
            self._reserved[kind] = max(0, self._reserved.get(kind, 0) - count)
        self._slot_freed()

    def local_run(self, run_id: str, /) -> ClaimedRun | None:
        with self._guard:
            return self._active.get(run_id)

    def stop(self, *, timeout: float = 30.0) -> None:
        self._stopping.set()
        self._kicked.set()
        with self._guard:
            active = list(self._active.values())
            threads = list(self._threads.values())
            loops, self._loops = self._loops, []
        for run in active:
            run.request_cancel("shutdown")
        deadline = time.monotonic() + timeout
        for thread in [*threads, *loops]:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.notify()

    # -- claiming -----------------------------------------------------------------------------

    def _dispatch_loop(self) -> None:
        next_sweep = 0.0
        while not self._stopping.is_set():
            try:
                if time.monotonic() >= next_sweep:
                    self.sweep()
                    next_sweep = time.monotonic() + self.settings.sweep_seconds
                while not self._stopping.is_set() and self._claim_one():
                    pass
            except TsunamiError as exc:  # the store is away for a moment: the next round tries again
                logger.warning("claiming runs failed: %s", exc.message)
            except Exception:
                logger.exception("claiming runs failed")
            self._kicked.wait(self.settings.poll_seconds)
            self._kicked.clear()

    def _tick_loop(self) -> None:
        next_ticks = [0.0 for _ in self._tickers]
        while not self._stopping.is_set():
            for i, ticker in enumerate(self._tickers):
                if self._stopping.is_set() or time.monotonic() < next_ticks[i]:
                    continue
                next_ticks[i] = time.monotonic() + ticker.seconds
                try:
                    sooner = ticker.tick()
                except TsunamiError as exc:  # the store is away for a moment: the next round tries again
                    logger.warning("a ticker failed: %s", exc.message)
                    continue
                except Exception:
                    logger.exception("a ticker failed")
                    continue
                if sooner is not None:
                    next_ticks[i] = min(next_ticks[i], time.monotonic() + max(_MIN_TICK_SECONDS, sooner))
            self._stopping.wait(max(0.0, min(next_ticks) - time.monotonic()))

    def _slot_freed(self) -> None:
        if self._short_of_slots:
            self.kick()

    def _eligible(self) -> list[str]:
        with self._guard:
            if len(self._active) + sum(self._reserved.values()) >= self.settings.max_parallel:
                self._short_of_slots = True
                return []
            counts: dict[str, int] = dict(self._reserved)
            for run in self._active.values():
                counts[run.kind] = counts.get(run.kind, 0) + 1
            kinds = [
                kind
                for kind, policy in self._kinds.items()
                if policy.max_parallel is None or counts.get(kind, 0) < policy.max_parallel
            ]
            self._short_of_slots = len(kinds) < len(self._kinds)
        return kinds

    def _claim_one(self) -> bool:
        kinds = self._eligible()
        if not kinds:
            return False
        with self.store.session() as session:  # SQLite's write lock only when there is work
            if not runs_repo.has_queued(session, kinds=kinds):
                return False
        with self.store.session(write_lock=True) as session:
            run = runs_repo.claim_next(session, kinds=kinds, worker=self.worker_id)
            claimed = _claimed(run) if run is not None else None
        if claimed is None:
            return False
        thread = threading.Thread(target=self._execute, args=(claimed,), name=f"run-{claimed.kind}", daemon=True)
        with self._guard:
            self._active[claimed.id] = claimed
            self._threads[claimed.id] = thread
        thread.start()
        self.notify(claimed.id)
        return True

    def _execute(self, run: ClaimedRun) -> None:
        assert self._executor is not None
        try:
            self._executor(run)
        except Exception as exc:  # the executor records how a run ended; this is the safety net
            logger.exception("run %s (%s) failed in its executor", run.id, run.kind)
            try:
                with self.store.session() as session:
                    runs_repo.finish(
                        session,
                        run.id,
                        state="failed",
                        error=f"internal error ({type(exc).__name__}); see the service log",
                        error_code="internal_error",
                        worker=self.worker_id,
                    )
            except TsunamiError:
                logger.exception("could not record the failure of run %s", run.id)
        finally:
            with self._guard:
                self._active.pop(run.id, None)
                self._threads.pop(run.id, None)
            self.notify(run.id)
            self._slot_freed()

    # -- heartbeats, cancels, timeouts, sweeps ------------------------------------------------

    def _beat_loop(self) -> None:
        while not self._stopping.wait(self._next_wake()):
            now = time.monotonic()
            with self._guard:
                active = dict(self._active)
            for run in active.values():
                if run.overdue(now):
                    run.request_cancel("timed_out")
            if not active:
                continue
            try:
                with self.store.session() as session:
                    answers = runs_repo.beat(session, list(active), worker=self.worker_id)
            except TsunamiError as exc:
                logger.warning("heartbeat failed: %s", exc.message)
                continue
            for run_id, run in active.items():
                if run_id not in answers:
                    run.request_cancel("lost")  # ended by a sweep or a cancel elsewhere: stop working on it
                elif answers[run_id]:
                    run.request_cancel("canceled")

    def _next_wake(self) -> float:
        wake = self.settings.heartbeat_seconds
        now = time.monotonic()
        with self._guard:
            for run in self._active.values():
                if run.timeout_seconds is not None and not run.cancelled:
                    wake = min(wake, max(0.05, run.started + run.timeout_seconds - now))
        return wake

    def sweep(self) -> list[tuple[str, str]]:
        """End or re-queue runs of any process whose heartbeat stopped; returns what changed."""
        stale_before = utcnow() - timedelta(seconds=self.settings.stale_after_seconds)
        requeue = [kind for kind, policy in self._kinds.items() if policy.requeue_when_lost]
        with self.store.session() as session:  # SQLite's write lock only when there is something to sweep
            if not runs_repo.has_stale(session, stale_before=stale_before):
                return []
        with self._guard:
            alive = list(self._active)
        with self.store.session(write_lock=True) as session:
            # This process's own runs are alive whatever their heartbeat says: a beat that came late
            # (the machine busy) must not get a run it is still executing failed under it.
            runs_repo.beat(session, alive, worker=self.worker_id)
            changed = runs_repo.sweep(session, stale_before=stale_before, requeue_kinds=requeue)
        for run_id, state in changed:
            logger.warning("run %s lost its worker; now %s", run_id, state)
        if changed:
            self.notify()
            self.kick()
        return changed


def _claimed(run: Run) -> ClaimedRun:
    return ClaimedRun(
        id=run.id,
        kind=run.kind,
        tenant_id=run.tenant_id,
        subject=run.subject,
        role=run.role,
        params=dict(run.params or {}),
        attempt=run.attempts,
        max_attempts=run.max_attempts,
        timeout_seconds=run.timeout_seconds,
    )
