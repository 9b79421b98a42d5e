"""The Source contract: the port to where data comes from.

A source knows how to

- :meth:`Source.check` a connection, with a diagnosis a person can act on when it fails;
- :meth:`Source.discover` its streams (tables, views, sheets, files) with columns, primary keys,
  row estimates and suggested cursor columns;
- read a stream from a saved state onwards (:class:`ReadRequest`: rows whose cursor is above
  ``cursor_after`` and at most ``cursor_upto``), either as Arrow record batches
  (:meth:`Source.read`) or, when ``capabilities.stage_parquet`` is set, straight into Parquet files
  in a folder (:meth:`Source.stage_parquet`), which the engine then commits.

Errors: :class:`~servicetsunami.errors.InvalidInput` for a bad request (unknown stream or column),
:class:`~servicetsunami.errors.SourceError` for the source failing (``transient`` when a retry
may help).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from servicetsunami.errors import SourceError


@dataclass(frozen=True, slots=True)
class SourceCapabilities:
    incremental: bool = True
    stage_parquet: bool = False


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
    kind: ClassVar[str]
    capabilities: ClassVar[SourceCapabilities]

    @abc.abstractmethod
    def check(self) -> CheckResult: ...

    @abc.abstractmethod
    def discover(self, *, schema: str | None = None) -> list[StreamInfo]: ...

    @abc.abstractmethod
    def read(self, request: ReadRequest, /) -> pa.RecordBatchReader: ...

    def stage_parquet(self, request: ReadRequest, directory: Path, /) -> None:
        """Write the requested rows as Parquet files into ``directory``."""
        raise SourceError(f"the {self.kind} source cannot write Parquet files directly")

    def cursor_bound(self, request: ReadRequest, /, *, rows: int) -> Any:
        """The cursor value that closes the next batch of about ``rows`` rows after
        ``request.cursor_after`` (all rows sharing that value included); None when there are none."""
        raise SourceError(f"the {self.kind} source does not read incrementally")

    def prepare(self) -> None:  # noqa: B027  # optional: sources that open nothing slow have nothing to start
        """Start opening what reads need (connections) in the background, without waiting; a read
        that comes first waits for it, and its errors surface in the read."""

    def cancel(self) -> None:  # noqa: B027  # optional: sources without a running query have nothing to stop
        """Stop a read in progress (called from another thread)."""

    def close(self) -> None:  # noqa: B027  # optional: sources holding nothing have nothing to release
        """Release connections."""
