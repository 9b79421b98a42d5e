"""The Source contract: the port to where data comes from.

A source knows how to

- :meth:`Source.check` a connection, with a diagnosis a person can act on when it fails;
- :meth:`Source.discover` its streams (tables, views, sheets, files) with columns, primary keys,
  row estimates and suggested cursor columns;
- find one stream by name (:meth:`Source.stream`);
- read a stream from a saved state onwards (:class:`ReadRequest`: rows whose cursor is above
  ``cursor_after`` and at most ``cursor_upto``), as Arrow record batches (:meth:`Source.read`,
  which every source has) or, when ``capabilities.stage_parquet`` is set, straight into Parquet
  files in a folder (:meth:`Source.stage_parquet`), which the engine then commits;
- close the next batch of an incremental read (:meth:`Source.cursor_bound`, when
  ``capabilities.incremental`` is set), and say how far the current read is
  (:meth:`Source.progress`).

The sync runner uses exactly these. It stages Parquet when both the source and the engine can, and
otherwise streams :meth:`Source.read` into :meth:`~servicetsunami.engines.base.Engine.write_table`;
either way one batch is one commit carrying the sync's idempotency token.

Errors: :class:`~servicetsunami.errors.InvalidInput` for a bad request (unknown stream or column),
:class:`~servicetsunami.errors.NotSupported` for a capability the source declares it lacks (an
incremental read of a source without ``incremental``, :meth:`Source.stage_parquet` without
``stage_parquet``), :class:`SourceError` for the source failing (``transient`` when a retry may help).
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from servicetsunami.errors import InvalidInput, NotSupported, SourceError


@dataclass(frozen=True, slots=True)
class SourceCapabilities:
    """What a source can do. Data, so nothing branches on a source's kind."""

    incremental: bool = True  # cursor_bound, and reads with a cursor range
    stage_parquet: bool = False  # stage_parquet: Parquet files written by the source itself


@dataclass(frozen=True, slots=True)
class SourceColumn:
    name: str
    source_type: str
    nullable: bool = True


@dataclass(frozen=True, slots=True)
class StreamInfo:
    name: str  # e.g. "public.customers" or "sales.csv"
    kind: str  # "table", "view", "file", "sheet"
    columns: list[SourceColumn]
    primary_key: list[str] = field(default_factory=list)
    row_estimate: int | None = None
    size_bytes: int | None = None
    cursor_candidates: list[str] = field(default_factory=list)
    readable: bool = True
    problem: str | None = None  # why it is not readable (e.g. permission denied)


@dataclass(frozen=True, slots=True)
class CheckResult:
    ok: bool
    latency_ms: float
    server_version: str | None = None
    problem: str | None = None  # short code: dns, refused, timeout, auth, database, ssl, permission
    diagnosis: str | None = None  # what happened and what to do


@dataclass(frozen=True, slots=True)
class ReadRequest:
    stream: str
    cursor_column: str | None = None
    cursor_after: Any = None  # exclusive lower bound; None: from the start
    cursor_upto: Any = None  # inclusive upper bound; None: to the end
    extra_columns: dict[str, Any] = field(default_factory=dict)  # constants appended (lineage columns)


class Source(abc.ABC):
    """Where rows come from. See the module docstring for the contract and its errors."""

    kind: ClassVar[str]
    capabilities: ClassVar[SourceCapabilities]

    @abc.abstractmethod
    def check(self) -> CheckResult:
        """Connect and report; a failure is a result with a diagnosis, never an exception."""

    @abc.abstractmethod
    def discover(self, *, schema: str | None = None) -> list[StreamInfo]:
        """Every stream the source offers (only those of ``schema`` where the source has schemas)."""

    def stream(self, name: str, /) -> StreamInfo:
        """One stream by name: :class:`~servicetsunami.errors.InvalidInput` naming it when there is
        none, :class:`SourceError` when it is there but cannot be read. Sources that can look one
        stream up cheaply override this; the default searches :meth:`discover`."""
        found = next((s for s in self.discover() if s.name == name), None)
        if found is None:
            raise InvalidInput(f"the {self.kind} source has no stream {name!r}; discover lists its streams")
        if not found.readable:
            raise SourceError(f"{name} cannot be read: {found.problem or 'the source refuses it'}")
        return found

    @abc.abstractmethod
    def read(self, request: ReadRequest, /) -> pa.RecordBatchReader:
        """The requested rows with ``request.extra_columns`` appended (see :func:`with_constants`)."""

    def stage_parquet(self, request: ReadRequest, directory: Path, /) -> None:
        """Write the requested rows as Parquet files into ``directory`` (only with
        ``capabilities.stage_parquet``)."""
        raise NotSupported(f"the {self.kind} source cannot write Parquet files directly; read it as Arrow")

    def cursor_bound(self, request: ReadRequest, /, *, rows: int) -> Any:
        """The cursor value that closes the next batch of about ``rows`` rows after
        ``request.cursor_after`` (all rows sharing that value included); None when there are none.
        Only with ``capabilities.incremental``."""
        raise not_incremental(self)

    def progress(self) -> float | None:
        """Share of the current read done (0-100), or None when the source cannot tell."""
        return None

    def prepare(self) -> None:  # noqa: B027  # optional: sources that open nothing slow have nothing to start
        """Start opening what reads need (connections) in the background, without waiting; a read
        that comes first waits for it, and its errors surface in the read."""

    def cancel(self) -> None:  # noqa: B027  # optional: sources without a running query have nothing to stop
        """Stop a read in progress (called from another thread)."""

    def close(self) -> None:  # noqa: B027  # optional: sources holding nothing have nothing to release
        """Release connections."""


def not_incremental(source: Source) -> NotSupported:
    """The refusal of an incremental read by a source without ``capabilities.incremental``."""
    return NotSupported(f"the {source.kind} source does not read incrementally; sync it with sync_mode='full_refresh'")


def with_constants(reader: pa.RecordBatchReader, constants: dict[str, Any]) -> pa.RecordBatchReader:
    """``reader`` with one constant column appended per entry of ``constants`` (the lineage columns
    of :attr:`ReadRequest.extra_columns`), batch by batch, so memory stays bounded."""
    if not constants:
        return reader
    scalars = [pa.scalar(value) for value in constants.values()]
    schema = reader.schema
    for name, scalar in zip(constants, scalars, strict=True):
        schema = schema.append(pa.field(name, scalar.type))

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            constant = [pa.repeat(scalar, batch.num_rows) for scalar in scalars]
            yield pa.RecordBatch.from_arrays([*batch.columns, *constant], schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())
