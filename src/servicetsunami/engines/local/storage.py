"""Where the local engine keeps things on disk, the per-table write lock, and Delta snapshots.

Layout under the lakehouse root::

    <root>/<catalog>/<schema>/<table>/            a Delta table (``_delta_log`` inside)
    <root>/<catalog>/_volumes/<schema>/<volume>/  a volume's files
    <root>/<catalog>/_locks/<schema>.<table>.lock per-table write lock (cross-process)
    <root>/_spill/<catalog>.<pid>/                what a catalog's DuckDB spills past its memory limit

Catalog, schema and table names are checked identifiers (they start with a letter), so ``_spill``,
``_volumes`` and ``_locks`` can never collide with them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar, cast

from deltalake import DeltaTable

from servicetsunami.errors import InvalidInput
from servicetsunami.tenancy import TableRef, check_identifier


class Layout:
    def __init__(self, root: Path) -> None:
        self.root = root

    def catalog_dir(self, catalog: str) -> Path:
        return self.root / check_identifier(catalog, what="catalog")

    def table_dir(self, ref: TableRef) -> Path:
        return self.root.joinpath(ref.catalog, ref.schema, ref.name)  # one path made, not three

    def volume_dir(self, catalog: str, schema: str, volume: str) -> Path:
        check_identifier(schema, what="schema")
        check_identifier(volume, what="volume")
        return self.catalog_dir(catalog) / "_volumes" / schema / volume

    def volume_file(self, catalog: str, schema: str, volume: str, path: str) -> Path:
        rel = PurePosixPath(path)
        if rel.is_absolute() or not rel.parts or any(p in ("", ".", "..") for p in rel.parts):
            raise InvalidInput(f"volume path {path!r} must be relative and may not contain '..'")
        if any(p.startswith(".") for p in rel.parts):
            raise InvalidInput(f"volume path {path!r} may not contain hidden names")
        return self.volume_dir(catalog, schema, volume).joinpath(*rel.parts)

    def spill_dir(self, catalog: str | None) -> Path:
        """DuckDB's temporary files for one catalog's database in this process (DuckDB names its
        files alike in every process, so each has its own folder; DuckDB removes it on close)."""
        name = check_identifier(catalog, what="catalog") if catalog else "_none"
        return self.root / "_spill" / f"{name}.{os.getpid()}"

    def lock_file(self, ref: TableRef) -> Path:
        return self.root / ref.catalog / "_locks" / f"{ref.schema}.{ref.name}.lock"

    @staticmethod
    def is_table(path: Path) -> bool:
        return (path / "_delta_log").is_dir()


class TableLocks:
    """Serialises writers of one table: a thread lock inside the process, ``flock`` across them.

    delta-rs's optimistic commits conflict under concurrent writers of one table (measured: 28 of 40
    concurrent MERGEs failed), so we queue writers instead of retrying them.
    """

    def __init__(self, layout: Layout) -> None:
        self._layout = layout
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    @contextlib.contextmanager
    def hold(self, ref: TableRef) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(str(ref), threading.Lock())
        with lock:
            path = self._layout.lock_file(ref)
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a+") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)


def latest_log_version(table_dir: Path) -> int | None:
    """The newest commit number in ``_delta_log`` without parsing the log (a directory listing)."""
    best = -1
    try:
        with os.scandir(os.path.join(table_dir, "_delta_log")) as it:
            for entry in it:
                name = entry.name
                if name.endswith(".json") and name[:20].isdigit() and len(name) == 25:
                    best = max(best, int(name[:20]))
    except FileNotFoundError:
        return None
    return best if best >= 0 else None


T = TypeVar("T")


class Snapshots:
    """Delta snapshots for readers: the latest one per table (refreshed when the log moves on) and
    a small LRU of pinned versions for time travel. Loading a log is the slow part of a small query,
    so we do it once per version."""

    def __init__(self, *, pinned_capacity: int = 64) -> None:
        self._guard = threading.RLock()  # re-entrant: a snapshot may be collected while it is held
        self._latest: dict[Path, DeltaTable] = {}
        self._pinned: OrderedDict[tuple[Path, int], DeltaTable] = OrderedDict()
        self._capacity = pinned_capacity
        # id(snapshot) -> (weak reference to it, values derived from it); an entry goes with its snapshot
        self._derived: dict[int, tuple[weakref.ref[DeltaTable], dict[Hashable, Any]]] = {}

    def latest(self, table_dir: Path) -> DeltaTable | None:
        head = latest_log_version(table_dir)
        if head is None:
            return None
        with self._guard:
            dt = self._latest.get(table_dir)
        if dt is not None and dt.version() == head:
            return dt
        dt = DeltaTable(str(table_dir))
        with self._guard:
            self._latest[table_dir] = dt
        return dt

    def at_version(self, table_dir: Path, version: int) -> DeltaTable:
        key = (table_dir, version)
        with self._guard:
            dt = self._pinned.get(key)
            if dt is not None:
                self._pinned.move_to_end(key)
                return dt
        dt = DeltaTable(str(table_dir), version=version)
        with self._guard:
            self._pinned[key] = dt
            while len(self._pinned) > self._capacity:
                self._pinned.popitem(last=False)
        return dt

    def at_timestamp(self, table_dir: Path, when: datetime | str) -> DeltaTable:
        dt = DeltaTable(str(table_dir))
        dt.load_as_version(when)
        return self.at_version(table_dir, dt.version())

    def derived(self, dt: DeltaTable, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()`` once per snapshot object: what is read from one version of the log (its
        description, its history) cannot change, and a write makes a new snapshot object."""
        with self._guard:
            entry = self._derived.get(id(dt))
            if entry is None or entry[0]() is not dt:
                entry = (weakref.ref(dt, self._drop_derived(id(dt))), {})
                self._derived[id(dt)] = entry
            memo = entry[1]
            if key in memo:
                return cast(T, memo[key])
        value = compute()
        with self._guard:
            memo[key] = value
        return value

    def _drop_derived(self, key: int) -> Callable[[weakref.ref[DeltaTable]], None]:
        def drop(gone: weakref.ref[DeltaTable]) -> None:
            with self._guard:
                entry = self._derived.get(key)
                if entry is not None and entry[0] is gone:
                    del self._derived[key]

        return drop

    def replace(self, table_dir: Path, dt: DeltaTable) -> None:
        """After this process wrote the table (holding its lock): ``dt``, at the new head, is the
        latest snapshot; pinned versions go as after :meth:`forget`."""
        with self._guard:
            self._latest[table_dir] = dt
            for key in [k for k in self._pinned if k[0] == table_dir]:
                del self._pinned[key]

    def forget(self, table_dir: Path) -> None:
        with self._guard:
            self._latest.pop(table_dir, None)
            for key in [k for k in self._pinned if k[0] == table_dir]:
                del self._pinned[key]
