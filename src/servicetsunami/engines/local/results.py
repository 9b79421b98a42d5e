"""Results of repeated queries, answered without running them again.

Delta data files never change once written: a new version of a table adds and removes files. The
DuckDB text of a query names the exact files of the snapshot it reads, so two runs with the same
text, caps and no non-deterministic function (``rand()``, ``now()``, ``uuid()``, ``TABLESAMPLE``,
...) give the same rows. :class:`ResultCache` keeps such results (Arrow tables, immutable) up to a
byte budget, least recently used first out, like a SQL warehouse's result cache. A result larger
than a tenth of the budget is not kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import pyarrow as pa
from sqlglot import exp

# Expressions whose value changes from one run to the next (sqlglot node names).
_VOLATILE = tuple(
    getattr(exp, name)
    for name in (
        "Rand",
        "Randn",
        "Uuid",
        "Shuffle",
        "CurrentDate",
        "CurrentTime",
        "CurrentTimestamp",
        "CurrentTimestampLTZ",
        "CurrentDatetime",
        "Localtimestamp",
        "CurrentUser",
        "StrToUnix",
        "UnixSeconds",
        "TableSample",
    )
    if hasattr(exp, name)
)
_VOLATILE_NAMES = frozenset(
    {"random", "rand", "randn", "uuid", "now", "shuffle", "current_timestamp", "unix_timestamp"}
)


def deterministic(statement: exp.Expr) -> bool:
    """Whether running ``statement`` twice over the same files must give the same rows."""
    for node in statement.walk():
        if isinstance(node, _VOLATILE):
            return False
        if isinstance(node, exp.Anonymous) and str(node.name).lower() in _VOLATILE_NAMES:
            return False
    return True


class ResultCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, int, int], tuple[pa.Table, bool]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int, int]) -> tuple[pa.Table, bool] | None:
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
            return hit

    def put(self, key: tuple[str, int, int], table: pa.Table, truncated: bool) -> None:
        size = table.nbytes
        if size > self.max_bytes // 10:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[0].nbytes
            self._entries[key] = (table, truncated)
            self._bytes += size
            while self._bytes > self.max_bytes and self._entries:
                _, (evicted, _) = self._entries.popitem(last=False)
                self._bytes -= evicted.nbytes
