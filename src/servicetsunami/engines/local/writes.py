"""Small pieces of the local engine's write and read paths."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction

from servicetsunami.engines.base import Idempotency, WriteMode, WriteResult
from servicetsunami.errors import BadFile, Conflict, EngineError, InvalidInput, TsunamiError
from servicetsunami.tenancy import TableRef


class RowCounter:
    """Counts rows as the writer pulls batches, without materialising the stream."""

    def __init__(self, source: pa.RecordBatchReader) -> None:
        self._source = source
        self.rows = 0

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self._source.schema, self._batches())

    def _batches(self) -> Iterator[pa.RecordBatch]:
        for batch in self._source:
            self.rows += batch.num_rows
            yield batch


def narrow_hugeints(table: pa.Table, columns: list[int]) -> pa.Table:
    """DuckDB sums BIGINTs into HUGEINT (shown as DECIMAL(38,0)); Databricks returns BIGINT. Narrow
    them back when every value fits, so results have the types a Databricks user expects."""
    for i in columns:
        try:
            narrowed = table.column(i).cast(pa.int64())
        except pa.ArrowInvalid:
            continue  # a value beyond BIGINT: keep the exact decimal
        table = table.set_column(i, table.schema.field(i).with_type(pa.int64()), narrowed)
    return table


def already_written(
    ref: TableRef,
    latest: Callable[[], DeltaTable | None],
    existed: bool,
    mode: WriteMode,
    idempotency: Idempotency | None,
) -> WriteResult | None:
    """Refuse ``create`` on an existing table; recognise a write whose token is already committed
    (in the table's ``latest()`` snapshot)."""
    if mode == "create" and existed:
        raise Conflict(f"table {ref.schema}.{ref.name} already exists; use mode 'append' or 'overwrite'")
    dt = latest() if existed and idempotency is not None else None
    if dt is not None and idempotency is not None:
        done = dt.transaction_version(idempotency.app_id)
        if done is not None and done >= idempotency.sequence:
            return WriteResult(ref, dt.version(), 0, skipped=True)
    return None


def commit_props(commit_info: dict[str, str] | None, idempotency: Idempotency | None) -> CommitProperties:
    info = dict(commit_info or {})
    if idempotency is not None:  # found again by last_commit_for
        info |= {"tsunami.app_id": idempotency.app_id, "tsunami.sequence": str(idempotency.sequence)}
    return CommitProperties(
        custom_metadata=info or None,
        app_transactions=[Transaction(app_id=idempotency.app_id, version=idempotency.sequence)]
        if idempotency
        else None,
    )


def same_columns(a: pa.Schema, b: pa.Schema) -> bool:
    return [(f.name, f.type) for f in a] == [(f.name, f.type) for f in b]


def parse_timestamp(value: datetime | str) -> datetime:
    """``TIMESTAMP AS OF`` accepts a date or a timestamp; without a zone it is UTC (Databricks' default)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise InvalidInput(
                f"cannot read {value!r} as a timestamp; use 'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM:SS'"
            ) from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def ms_to_dt(ms: Any) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, tz=UTC) if isinstance(ms, int | float) else None


def translate_write_error(exc: BaseException, ref: TableRef) -> BaseException:
    if isinstance(exc, TsunamiError):
        return exc
    if not isinstance(exc, Exception):
        return exc  # KeyboardInterrupt and friends pass through untouched
    text = str(exc)
    marker = "IOError: "
    if marker in text:  # an error raised by the stream's producer (e.g. a CSV parser)
        return BadFile(text.split(marker, 1)[1].split("\n\n")[0].strip()[:800])
    if "Schema error" in text or "SchemaMismatch" in type(exc).__name__ or "Cast error" in text:
        return InvalidInput(
            f"the data does not fit table {ref.schema}.{ref.name}: {text.splitlines()[0][:400]}; "
            "use mode 'overwrite' to replace the table"
        )
    if isinstance(exc, OSError) or "No space left" in text:
        return EngineError(f"could not write {ref.schema}.{ref.name}: {text[:300]}", transient=True)
    return EngineError(f"could not write {ref.schema}.{ref.name}: {text.splitlines()[0][:400]}")
