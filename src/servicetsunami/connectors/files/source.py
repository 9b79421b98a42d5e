"""An uploaded or landed file as a Source: one stream per file, or one per sheet of a workbook.

Parsing is :class:`~servicetsunami.connectors.files.reader.FileReader`'s (DuckDB sniffs, streams and names
the bad line); this adapter maps the Source contract onto it. A workbook's sheets are the streams
``<file name>:<sheet>`` (Excel forbids ``:`` in sheet names); the stream ``<file name>`` is the
whole file, every sheet of a workbook with a ``_sheet`` column. Files are read whole: there are no
incremental reads (``capabilities.incremental`` is False), and asking for one is
:class:`~servicetsunami.errors.NotSupported`.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import duckdb
import pyarrow as pa

from servicetsunami.connectors.base import (
    CheckResult,
    ReadRequest,
    Source,
    SourceCapabilities,
    SourceColumn,
    StreamInfo,
    not_incremental,
)
from servicetsunami.connectors.files.limits import StructureLimits, check_structure
from servicetsunami.connectors.files.reader import FileOptions, FileReader, detect_format
from servicetsunami.errors import InvalidInput, SourceError

T = TypeVar("T")


class FileStager(Protocol):
    """Writes a file's rows (with ``extra`` constant columns) as Parquet files into ``output_dir``
    somewhere a crash or a runaway cannot take the caller down (the service's reader process)."""

    def __call__(
        self, path: Path, /, *, file_name: str, options: FileOptions, output_dir: Path, extra: dict[str, Any]
    ) -> object: ...


class FileSource(Source):
    kind: ClassVar[str] = "files"
    capabilities: ClassVar[SourceCapabilities] = SourceCapabilities(incremental=False, stage_parquet=True)

    def __init__(
        self,
        path: Path,
        /,
        *,
        file_name: str | None = None,
        options: FileOptions | None = None,
        batch_rows: int = 65_536,
        limits: StructureLimits | None = None,
        stager: FileStager | None = None,
    ) -> None:
        """``file_name``: the name the user gave the file (its extension tells the format when
        ``options.format`` does not); defaults to the path's name. ``limits``: checked once before
        the first reader opens the file. ``stager``: where :meth:`stage_parquet` has the file read
        (None: in this process)."""
        self.path = path
        self.limits = limits
        self.stager = stager
        self._checked = False
        self.file_name = file_name or path.name
        self.options = options or FileOptions()
        self.batch_rows = batch_rows
        self._readers: set[FileReader] = set()  # open for streams handed out by read()
        self._guard = threading.Lock()

    def check(self) -> CheckResult:
        started = time.perf_counter()
        try:
            detect_format(self.file_name, self.options)
        except InvalidInput as exc:
            return CheckResult(False, _ms(started), problem="format", diagnosis=exc.message)
        try:
            with open(self.path, "rb") as fh:
                fh.read(1)
        except FileNotFoundError:
            return CheckResult(
                False, _ms(started), problem="missing", diagnosis=f"{self.file_name} is gone; upload it again"
            )
        except OSError as exc:
            return CheckResult(
                False, _ms(started), problem="permission", diagnosis=f"cannot read {self.file_name}: {exc.strerror}"
            )
        return CheckResult(True, _ms(started))

    def discover(self, *, schema: str | None = None) -> list[StreamInfo]:
        """``schema`` is ignored: a file has none."""
        with self._reader(self.file_name) as reader:
            sheets = reader.sheets()
        if not sheets:
            return [self._info(self.file_name, "file")]
        return [self._info(f"{self.file_name}:{sheet}", "sheet") for sheet in sheets]

    def read(self, request: ReadRequest, /) -> pa.RecordBatchReader:
        self._refuse_cursor(request)
        reader = self._reader(request.stream)
        try:
            stream, _ = self._translated(lambda: reader.open(extra=request.extra_columns))
        except BaseException:
            reader.__exit__()
            raise
        with self._guard:
            self._readers.add(reader)
        return pa.RecordBatchReader.from_batches(stream.schema, self._drain(stream, reader))

    def stage_parquet(self, request: ReadRequest, directory: Path, /) -> None:
        self._refuse_cursor(request)
        stager = self.stager
        if stager is not None:
            options = self._options_for(request.stream)
            self._check_structure(options)
            self._translated(
                lambda: stager(
                    self.path,
                    file_name=self.file_name,
                    options=options,
                    output_dir=directory,
                    extra=dict(request.extra_columns),
                )
            )
            return
        with self._reader(request.stream, output_dir=directory) as reader:
            self._translated(lambda: reader.copy_to_parquet(extra=request.extra_columns))

    def close(self) -> None:
        with self._guard:
            readers, self._readers = self._readers, set()
        for reader in readers:
            reader.__exit__()

    # -- internals ----------------------------------------------------------------------------

    def _refuse_cursor(self, request: ReadRequest) -> None:
        """Rows past a cursor would silently come back as the whole file: refuse instead."""
        if request.cursor_column is not None or request.cursor_after is not None or request.cursor_upto is not None:
            raise not_incremental(self)

    def _reader(self, stream: str, *, output_dir: Path | None = None) -> FileReader:
        options = self._options_for(stream)
        self._check_structure(options)
        line = self.limits.max_line_bytes if self.limits is not None else None
        return self._translated(
            lambda: FileReader(
                self.path,
                file_name=self.file_name,
                options=options,
                batch_rows=self.batch_rows,
                output_dir=output_dir,
                max_line_bytes=line,
            )
        )

    def _check_structure(self, options: FileOptions) -> None:
        limits = self.limits
        if limits is None or self._checked:
            return
        encoding = {"utf16": "utf-16", "utf-16": "utf-16", "latin1": "latin-1", "latin-1": "latin-1"}.get(
            (options.encoding or "utf-8").lower(), "utf-8"
        )
        fmt = detect_format(self.file_name, options)
        self._translated(lambda: check_structure(self.path, fmt, self.file_name, limits, encoding=encoding))
        self._checked = True

    def _options_for(self, stream: str) -> FileOptions:
        if stream == self.file_name:
            return self.options
        prefix = f"{self.file_name}:"
        if stream.startswith(prefix) and detect_format(self.file_name, self.options) == "xlsx":
            return dataclasses.replace(self.options, sheet=stream.removeprefix(prefix))
        raise InvalidInput(f"{self.file_name} has no stream {stream!r}; discover lists its streams")

    def _info(self, stream: str, kind: str) -> StreamInfo:
        with self._reader(stream) as reader:
            rows, _ = self._translated(lambda: reader.open(extra={}))
            columns = _described(rows.schema)
        return StreamInfo(name=stream, kind=kind, columns=columns, size_bytes=self.path.stat().st_size)

    def _drain(self, stream: pa.RecordBatchReader, reader: FileReader) -> Iterator[pa.RecordBatch]:
        try:
            yield from stream
        finally:
            with self._guard:
                self._readers.discard(reader)
            reader.__exit__()

    def _translated(self, call: Callable[[], T]) -> T:
        """A file that vanished or cannot be opened fails the source; a bad file stays BadFile."""
        try:
            return call()
        except OSError as exc:
            raise SourceError(f"cannot read {self.file_name}: {exc.strerror or exc}") from exc


def _described(schema: pa.Schema) -> list[SourceColumn]:
    """Columns with DuckDB's names for their types, as ``DESCRIBE`` shows them."""
    con = duckdb.connect(":memory:")
    try:
        rel = con.from_arrow(schema.empty_table())
        return [SourceColumn(name, str(typ)) for name, typ in zip(rel.columns, rel.types, strict=True)]
    finally:
        con.close()


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
