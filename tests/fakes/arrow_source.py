"""A source over in-memory Arrow tables that reads only as Arrow batches: no Parquet staging, the
least the Source contract asks for. Tests change its rows between runs, make a read fail part-way,
or act between the batches of a read.

``tables=None`` is a source that cannot be reached: ``check`` says so, reads raise ``SourceError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from servicetsunami.connectors.base import (
    CheckResult,
    ReadRequest,
    Source,
    SourceCapabilities,
    SourceColumn,
    SourceError,
    StreamInfo,
    with_constants,
)
from servicetsunami.errors import InvalidInput


class ArrowSource(Source):
    kind: ClassVar[str] = "arrow"
    capabilities: ClassVar[SourceCapabilities] = SourceCapabilities(incremental=True, stage_parquet=False)

    def __init__(
        self,
        tables: dict[str, pa.Table] | None,
        *,
        primary_keys: dict[str, list[str]] | None = None,
        chunk_rows: int = 2,
    ) -> None:
        self.tables = tables
        self.primary_keys = primary_keys or {}
        self.chunk_rows = chunk_rows
        self.reads = 0  # read() calls so far
        self.fail_read: int | None = None  # this read (1-based) fails after its first chunk
        self.between_chunks: Callable[[], None] = lambda: None

    def check(self) -> CheckResult:
        if self.tables is None:
            return CheckResult(False, 0.0, problem="refused", diagnosis="nothing answers; start the source")
        return CheckResult(True, 0.0)

    def discover(self, *, schema: str | None = None) -> list[StreamInfo]:
        return [
            StreamInfo(
                name=name,
                kind="table",
                columns=[SourceColumn(f.name, str(f.type), f.nullable) for f in table.schema],
                primary_key=self.primary_keys.get(name, []),
                row_estimate=table.num_rows,
                cursor_candidates=[f.name for f in table.schema if pa.types.is_timestamp(f.type)],
            )
            for name, table in sorted(self._tables().items())
        ]

    def read(self, request: ReadRequest, /) -> pa.RecordBatchReader:
        table = self._window(request)
        self.reads += 1
        failing = self.reads == self.fail_read
        return with_constants(
            pa.RecordBatchReader.from_batches(table.schema, self._chunks(table, failing)), request.extra_columns
        )

    def cursor_bound(self, request: ReadRequest, /, *, rows: int) -> Any:
        values = self._window(request).column(request.cursor_column or "").drop_null()
        if len(values) == 0:
            return None
        ordered = pc.sort_indices(values)
        return values[ordered[min(rows, len(values)) - 1].as_py()].as_py()

    # -- internals ----------------------------------------------------------------------------

    def _tables(self) -> dict[str, pa.Table]:
        if self.tables is None:
            raise SourceError("cannot reach the arrow source: nothing answers", transient=True)
        return self.tables

    def _window(self, request: ReadRequest) -> pa.Table:
        tables = self._tables()
        if request.stream not in tables:
            raise InvalidInput(f"the arrow source has no stream {request.stream!r}")
        table = tables[request.stream]
        column = request.cursor_column
        if column is None:
            return table
        if column not in table.column_names:
            raise InvalidInput(f"cursor column {column!r} is not a column of {request.stream}")
        keep = pc.is_valid(table[column])
        if request.cursor_after is not None:
            keep = pc.and_(keep, pc.greater(table[column], request.cursor_after))
        if request.cursor_upto is not None:
            keep = pc.and_(keep, pc.less_equal(table[column], request.cursor_upto))
        return table.filter(keep)

    def _chunks(self, table: pa.Table, failing: bool) -> Iterator[pa.RecordBatch]:
        for i, batch in enumerate(table.to_batches(max_chunksize=self.chunk_rows)):
            if i:
                self.between_chunks()
            yield batch
            if failing:
                raise SourceError("the arrow source went away in the middle of a read", transient=True)
