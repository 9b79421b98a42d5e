"""The launcher port: where and how runs execute (DESIGN.md section 9).

Glossary
--------
run
    A record in the system store (:class:`~servicetsunami.store.models.Run`): a kind, an owner,
    parameters, a state ``queued | running | succeeded | failed | canceled | timed_out | skipped``,
    attempts, progress, a result or an error, a heartbeat.
claim
    A worker turns the oldest queued run of a kind it executes into ``running`` under its own id.
    Exactly one worker wins a claim, whatever the number of processes sharing the store.
heartbeat
    While a run executes, its worker marks it alive every ``heartbeat_seconds``. A sweep (any worker)
    ends a run whose heartbeat is older than ``stale_after_seconds``: its process died.
cancel
    A request recorded on the run; the worker sees it at its next beat and calls the run's cancel
    callbacks (stop a query, kill a subprocess). A run past its ``timeout_seconds`` is canceled the
    same way with the reason ``timed_out``.

Contract
--------
:meth:`Launcher.start` begins claiming runs of the given kinds and calls the executor, in a thread
of its own, with a :class:`ClaimedRun` (and calls each :class:`Ticker` on its period); the executor
records how the run ended (the launcher only fails a run whose executor raised).
:meth:`Launcher.kick` says a run was just queued, so an idle launcher claims at once instead of at
its next poll. :meth:`Launcher.notify` and
:meth:`Launcher.wait_change` let waiters in this process wake on a change instead of polling.
:meth:`Launcher.stop` cancels what runs here with the reason ``shutdown`` and waits, bounded.
:meth:`Launcher.reserve` and :meth:`Launcher.adopt` let a coordinator execute runs it queued itself
already claimed (skipping the queue) while this process has room; a launcher without them answers 0.
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

logger = logging.getLogger(__name__)

CancelReason = Literal["canceled", "timed_out", "shutdown", "lost"]


@dataclass(frozen=True, slots=True)
class KindPolicy:
    """How a launcher treats one kind of run."""

    max_parallel: int | None = None  # most of this kind at once in this process; None: only the global cap
    requeue_when_lost: bool = False  # a run whose worker died (or stopped) goes back to the queue


@dataclass(eq=False)
class ClaimedRun:
    """A run this process executes. Cancel callbacks may be called from another thread."""

    id: str
    kind: str
    tenant_id: str | None
    subject: str
    role: str | None
    params: dict[str, Any]
    attempt: int
    max_attempts: int
    timeout_seconds: float | None
    tenant_slug: str | None = None  # known already when a coordinator adopts a run it created
    started: float = field(default_factory=time.monotonic)
    cancel_reason: CancelReason | None = None
    live: Callable[[], dict[str, Any]] | None = None  # progress known in memory, fresher than the store's
    _cancelled: threading.Event = field(default_factory=threading.Event, repr=False)
    _callbacks: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def wait_cancelled(self, timeout: float | None = None) -> bool:
        return self._cancelled.wait(timeout)

    def on_cancel(self, callback: Callable[[], None], /) -> None:
        """Call ``callback`` when the run is canceled (at once if it already is)."""
        with self._lock:
            if not self._cancelled.is_set():
                self._callbacks.append(callback)
                return
        _call(callback)

    def request_cancel(self, reason: CancelReason, /) -> None:
        with self._lock:
            if self._cancelled.is_set():
                return
            self.cancel_reason = reason
            self._cancelled.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            _call(callback)

    def overdue(self, now: float) -> bool:
        return self.timeout_seconds is not None and now - self.started > self.timeout_seconds


def _call(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:  # one failing callback must not keep the others from stopping the run
        logger.exception("a cancel callback failed")


Executor = Callable[[ClaimedRun], None]


@dataclass(frozen=True, slots=True)
class Ticker:
    """Something the launcher calls every ``seconds`` (e.g. queue a replay when work is due); a
    tick that returns a number of seconds is called again after that long if it is sooner."""

    seconds: float
    tick: Callable[[], float | None]


class Launcher(abc.ABC):
    """Claims runs and executes them; see the module docstring for the contract."""

    worker_id: str

    @abc.abstractmethod
    def start(
        self, executor: Executor, /, *, kinds: Mapping[str, KindPolicy], tickers: Sequence[Ticker] = ()
    ) -> None: ...

    @property
    @abc.abstractmethod
    def started(self) -> bool: ...

    @abc.abstractmethod
    def kick(self) -> None: ...

    @abc.abstractmethod
    def notify(self, run_id: str | None = None, /) -> None:
        """Something changed here: run ``run_id`` (it started, progressed or ended), or anything."""

    @abc.abstractmethod
    def wait_change(self, timeout: float, /, *, after: int | None = None, run_id: str | None = None) -> None:
        """Wait until something changes here or ``timeout`` passes; with ``after`` (a value of
        :meth:`changes` read before the caller looked at the store), return at once when a change
        came since, so a change between that look and this wait is not slept through. With
        ``run_id``, only a change of that run (or one not about any run) counts."""

    def changes(self) -> int:
        """A number that grows with every :meth:`notify` (see :meth:`wait_change`)."""
        return 0

    @abc.abstractmethod
    def local_run(self, run_id: str, /) -> ClaimedRun | None:
        """The run, if this process executes it now."""

    @abc.abstractmethod
    def stop(self, *, timeout: float = 30.0) -> None: ...

    def reserve(self, kind: str, wanted: int, /) -> int:
        """Hold up to ``wanted`` of this process's slots for runs of ``kind`` that the caller creates
        already claimed by :attr:`worker_id`; returns how many it got (0: queue them instead)."""
        return 0

    def adopt(self, run: ClaimedRun, /) -> None:
        """Execute ``run`` (created claimed by this worker) in one slot held by :meth:`reserve`."""
        raise NotImplementedError("this launcher does not execute runs claimed by their creator")

    def release(self, kind: str, count: int, /) -> None:
        """Give back ``count`` slots held by :meth:`reserve` and not used."""
        return None
