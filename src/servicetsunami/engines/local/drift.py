"""Schema drift between a table and the rows about to land in it.

New columns are added by the writers' schema evolution. A column whose type changed is judged
here: a *widening* (byte -> short -> int -> long, float -> double, integers -> double, date ->
timestamp, a decimal with room for every old value) is applied by rewriting the table with the
wider type in one commit. Rows of a narrower type than the column (a source that went from bigint
to integer) are cast up, since the column holds all their values. Any other change stops the write
with an error that names the column, and nothing lands. These are the widenings Delta's type-widening feature
allows, so a table stays readable the same way by Databricks.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.types as pat
from deltalake import CommitProperties, DeltaTable, write_deltalake

from servicetsunami.engines.local import deletions
from servicetsunami.errors import InvalidInput

logger = logging.getLogger(__name__)

_INT_RANK = {pa.int8(): 1, pa.int16(): 2, pa.int32(): 3, pa.int64(): 4}


def is_widening(old: pa.DataType, new: pa.DataType) -> bool:
    if old == new:
        return False
    if old in _INT_RANK and new in _INT_RANK:
        return _INT_RANK[new] > _INT_RANK[old]
    if pat.is_float32(old) and pat.is_float64(new):
        return True
    if old in _INT_RANK and pat.is_float64(new):
        return _INT_RANK[old] <= 3  # every int32 is exact in a double; int64 values may not be
    if pat.is_date32(old) and pat.is_timestamp(new):
        return bool(new.tz is None)
    if pat.is_decimal(old) and pat.is_decimal(new):
        return bool(new.scale >= old.scale and new.precision - new.scale >= old.precision - old.scale)
    if old in _INT_RANK and pat.is_decimal(new):
        digits = {1: 3, 2: 5, 3: 10, 4: 20}[_INT_RANK[old]]
        return bool(new.precision - new.scale >= digits)
    return False


def _same_kind(old: pa.DataType, new: pa.DataType) -> bool:
    """Types Delta stores identically (Arrow string flavours, timestamp units)."""
    strings = (pat.is_string, pat.is_large_string, pat.is_string_view)
    if any(f(old) for f in strings) and any(f(new) for f in strings):
        return True
    if pat.is_timestamp(old) and pat.is_timestamp(new):
        return (old.tz is None) == (new.tz is None)
    return bool(old == new)


def columns_to_widen(current: pa.Schema, incoming: pa.Schema, *, table: str) -> dict[str, pa.DataType]:
    """The columns of ``current`` whose type must widen to take ``incoming``; refuses narrowing and
    incompatible changes with an error naming the column."""
    widen: dict[str, pa.DataType] = {}
    for field in incoming:
        if field.name not in current.names:
            continue  # a new column: schema evolution adds it
        old = current.field(field.name).type
        new = field.type
        if _same_kind(old, new) or pat.is_null(new):
            continue
        if pat.is_nested(old) or pat.is_nested(new):
            if old != new:
                raise InvalidInput(
                    f"column {field.name!r} of {table} changed type from {old} to {new}; nested types must "
                    "stay the same (overwrite the table to change them)"
                )
            continue
        if is_widening(old, new):
            widen[field.name] = new
        elif is_widening(new, old) or (old == pa.float64() and new == pa.int64()):
            continue  # the column already holds every value of the narrower type: the writer casts up
        else:
            raise InvalidInput(
                f"column {field.name!r} of {table} changed type from {old} to {new}, which cannot hold the "
                "rows already there; nothing was written. Run a full refresh to rebuild the table"
            )
    return widen


def widened_schema(current: pa.Schema, widen: dict[str, pa.DataType]) -> pa.Schema:
    return pa.schema([f.with_type(widen[f.name]) if f.name in widen else f for f in current])


def widen_table(path: Path, incoming: pa.Schema, /, *, table: str, snapshot: DeltaTable | None = None) -> bool:
    """Apply the widenings ``incoming`` needs to the Delta table at ``path`` in one rewrite commit
    (refusing other type changes, as :func:`columns_to_widen` does). True when it rewrote.
    ``snapshot``: the table's latest version, already loaded (it is read, not changed)."""
    dt = snapshot or DeltaTable(str(path))
    current = pa.schema(dt.schema().to_arrow())
    widen = columns_to_widen(current, incoming, table=table)
    if not widen:
        return False
    target = widened_schema(current, widen)
    batches = (batch.cast(target) for batch in deletions.scan(dt))
    logger.info("widening %s of %s", ", ".join(f"{k} to {v}" for k, v in widen.items()), table)
    write_deltalake(
        str(path),
        pa.RecordBatchReader.from_batches(target, batches),
        mode="overwrite",
        schema_mode="overwrite",
        commit_properties=CommitProperties(custom_metadata={"tsunami.operation": "widen columns"}),
    )
    return True
