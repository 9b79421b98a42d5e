"""The local launcher: claims runs from the system store and executes them in threads of this process.

Three threads of its own: the dispatcher claims queued runs while there is room (woken by
:meth:`LocalLauncher.kick`, else every ``poll_seconds``) and sweeps runs whose worker died (every
``sweep_seconds``); the ticker thread calls the tickers, each on its period or sooner when it asks
(so a schedule's tick is not held up by claiming, nor claiming by a long tick); the beater marks this
process's runs alive, passes cancel requests on, and cancels runs past their timeout. Each claimed
run executes on a thread of its own while it lasts.

With ``tsunami serve --workers N`` every worker process has one launcher over the same store; the
claim is a compare-and-set in the store, so exactly one of them executes a run.

A coordinator (a job run) may skip the queue for the runs it starts: it holds slots
(:meth:`~LocalLauncher.reserve`), creates the runs already claimed by this worker in the
transaction that counts its limits, and hands them to :meth:`~LocalLauncher.adopt`; they are then
beaten, timed out, canceled and swept like claimed runs. Reserved slots count against
``max_parallel`` and the kinds' limits.

Runs execute in daemon threads kept for the next run while idle (:class:`_Threads`): starting a
thread waits until the new thread holds the interpreter, which takes milliseconds while other
threads are busy in Python (a coordinator starting tasks next to running ones), whereas handing a
run to a waiting thread does not wait. Each run executes in a context of its own, as in a new thread.
"""

from __future__ import annotations

import contextvars
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
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
        self._done: dict[str, threading.Event] = {}  # run id -> set once its execution has returned
        self._pool = _Threads(self._execute)
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
        with self._guard:
            self._reserved[run.kind] = max(0, self._reserved.get(run.kind, 0) - 1)
            stopping = self._stopping.is_set()
            if not stopping:
                self._active[run.id] = run
                self._done[run.id] = threading.Event()
        if stopping:  # stop() came between the reservation and now: leave the run to the next worker
            with self.store.session() as session:
                runs_repo.requeue(session, run.id, worker=self.worker_id)
            self.notify()
            return
        self._pool.submit(run)

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
            done = list(self._done.values())
            loops, self._loops = self._loops, []
        for run in active:
            run.request_cancel("shutdown")
        deadline = time.monotonic() + timeout
        for event in done:
            event.wait(max(0.0, deadline - time.monotonic()))
        for loop in loops:
            loop.join(max(0.0, deadline - time.monotonic()))
        self._pool.close()
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
        with self._guard:
            self._active[claimed.id] = claimed
            self._done[claimed.id] = threading.Event()
        self._pool.submit(claimed)
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
                done = self._done.pop(run.id, None)
            if done is not None:
                done.set()
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


class _Threads:
    """Daemon threads that execute runs, each waiting up to :attr:`IDLE_SECONDS` for the next one
    once its run is done. ``_idle`` counts the waiting threads no run was handed to yet: a run goes
    to one of them, or to a new thread when there is none."""

    IDLE_SECONDS = 30.0

    def __init__(self, execute: Callable[[ClaimedRun], None]) -> None:
        self._execute = execute
        self._work: queue.SimpleQueue[ClaimedRun | None] = queue.SimpleQueue()  # None: leave
        self._idle = 0
        self._lock = threading.Lock()

    def submit(self, run: ClaimedRun, /) -> None:
        with self._lock:
            waiting = self._idle > 0
            if waiting:
                self._idle -= 1  # that thread's now: it stays for this run
        self._work.put(run)
        if not waiting:
            threading.Thread(target=self._loop, name=f"run-{run.kind}", daemon=True).start()

    def close(self) -> None:
        """Let the waiting threads go (the launcher stopped; a later run starts a thread again)."""
        with self._lock:
            waiting, self._idle = self._idle, 0
        for _ in range(waiting):
            self._work.put(None)

    def _loop(self) -> None:
        thread = threading.current_thread()
        while True:
            try:
                run = self._work.get(timeout=self.IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._idle > 0:  # still counted as waiting: leave
                        self._idle -= 1
                        return
                continue  # a run was handed over as the wait ended: take it
            if run is None:
                return
            thread.name = f"run-{run.kind}"
            contextvars.Context().run(self._execute, run)  # a fresh context, as a new thread has
            thread.name = "run-idle"
            with self._lock:
                self._idle += 1


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
