"""One thread that interrupts queries past their time limit.

A ``threading.Timer`` per query starts (and waits for) a new thread on every query, which under
load costs more than the small queries it guards. :class:`Watchdog` keeps the deadlines in a heap
and sleeps until the earliest; :meth:`Watchdog.guard` arms one for the length of a ``with`` block.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterator


class Watchdog:
    def __init__(self, name: str = "tsunami-query-watchdog") -> None:
        self._name = name
        self._heap: list[tuple[float, int, Callable[[], object]]] = []
        self._armed: set[int] = set()
        self._ids = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def guard(self, seconds: float, on_timeout: Callable[[], object]) -> Iterator[None]:
        """Call ``on_timeout`` (from the watchdog's thread) if the block runs past ``seconds``."""
        entry = next(self._ids)
        with self._wake:
            self._ensure_thread()
            self._armed.add(entry)
            heapq.heappush(self._heap, (time.monotonic() + seconds, entry, on_timeout))
            if self._heap[0][1] == entry:
                self._wake.notify()
        try:
            yield
        finally:
            with self._wake:
                self._armed.discard(entry)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._heap and self._heap[0][1] not in self._armed:
                    heapq.heappop(self._heap)  # its block ended in time
                if not self._heap:
                    self._wake.wait()
                    continue
                deadline, entry, callback = self._heap[0]
                delay = deadline - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                heapq.heappop(self._heap)
                self._armed.discard(entry)
            callback()
