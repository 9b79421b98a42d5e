"""What stops a run's engine statements: a run registers the stop function of each statement it
starts (through :func:`~servicetsunami.engines.base.stoppable`), and its cancel or timeout calls
them all, including those of statements that start after the stop. A stop that reaches a statement
before it began executing is lost (DuckDB's interrupt is), so the stops of statements still running
are made again, at growing intervals, until those statements end.

Used as::

    stops = Stops()
    ctx.on_cancel(stops.stop_all)
    with stoppable(stops.add):
        ...  # every engine statement started here is interrupted by a cancel
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

_AGAIN_AFTER = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4)  # seconds between the stops made again

logger = logging.getLogger(__name__)


class Stops:
    """The stop functions of the statements a run has running now; all called when it is stopped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stops: dict[int, Callable[[], None]] = {}
        self._next = 0
        self._stopped = False
        self._released = threading.Event()  # no statement is running (set as the last one ends)

    def add(self, stop: Callable[[], None]) -> Callable[[], None]:
        """Register ``stop`` (called at once when the run is already stopped); returns its release."""
        with self._lock:
            key, self._next = self._next, self._next + 1
            self._stops[key] = stop
            self._released.clear()
            stopped = self._stopped
        if stopped:
            _quietly(stop)
            self._keep_stopping()

        def release() -> None:
            with self._lock:
                self._stops.pop(key, None)
                if not self._stops:
                    self._released.set()

        return release

    def stop_all(self) -> None:
        with self._lock:
            self._stopped = True
            stops = list(self._stops.values())
        for stop in stops:
            _quietly(stop)
        if stops:
            self._keep_stopping()

    def _keep_stopping(self) -> None:
        threading.Thread(target=self._stop_again, name="run-stops", daemon=True).start()

    def _stop_again(self) -> None:
        for wait in _AGAIN_AFTER:
            if self._released.wait(wait):
                return
            with self._lock:
                stops = list(self._stops.values())
            for stop in stops:
                _quietly(stop)


def _quietly(stop: Callable[[], None]) -> None:
    try:
        stop()
    except Exception:  # the statement ended meanwhile; nothing to stop
        logger.debug("stopping a statement failed", exc_info=True)
