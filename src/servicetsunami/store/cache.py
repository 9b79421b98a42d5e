"""Reads of the system store remembered until anything is committed to it.

The hot REST and MCP paths read the same few rows on every request (a tenant's settings, its
datasets, how a table was built). :class:`ReadCache` keeps such results keyed by the caller's key
and the store's *generation*: a number that changes whenever any connection, in this process or
another, commits a change. A cached value is returned only while the generation it was computed
at is still current, so a cache hit is never staler than a fresh read would be at that moment.

On SQLite the generation is ``PRAGMA data_version`` of a connection kept for that purpose and
never used to write (SQLite bumps it for every commit made by any other connection, other processes
included). PostgreSQL has no cheap equivalent, and neither has an in-memory SQLite database (another
connection would open another database), so there :meth:`ReadCache.get` always computes.

Cached values are shared between callers: treat them as read-only.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

MAX_ENTRIES = 4096


class SqliteGeneration:
    """``PRAGMA data_version`` of a connection to the store's database file that never writes.

    Opened on first use (the file may not exist before the first migration); None when it cannot
    be read, which makes the cache compute."""

    def __init__(self, database: str) -> None:
        self._database = database
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def __call__(self) -> int | None:
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = sqlite3.connect(self._database, check_same_thread=False, isolation_level=None)
                return int(self._conn.execute("PRAGMA data_version").fetchone()[0])
            except sqlite3.Error:
                self._close()
                return None

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class ReadCache:
    """Results of store reads, valid while the store's generation is unchanged."""

    def __init__(self, generation: Callable[[], int | None] | None, max_entries: int = MAX_ENTRIES) -> None:
        self._generation = generation
        self._max = max_entries
        self._entries: OrderedDict[Hashable, tuple[int, object]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._generation is not None

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``, or the value it gave for ``key`` if nothing was committed since."""
        generation = self._generation() if self._generation is not None else None
        if generation is None:
            return compute()
        # The generation is read before computing: a commit in between makes the entry stale at once.
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit[0] == generation:
                self._entries.move_to_end(key)
                return hit[1]  # type: ignore[return-value]  # stored by this same key's compute
        value = compute()
        with self._lock:
            self._entries[key] = (generation, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def generation_for(dialect: str, database: str | None) -> SqliteGeneration | None:
    """The generation source for a store, or None where there is no cheap one."""
    if dialect != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return SqliteGeneration(str(Path(database).expanduser()))
