"""Where the REST source keeps a walk's records: the spool, and the Parquet staged from it.

The spool is a list of chunk files on local disk of about ``chunk_bytes`` each, each one JSON array
of records as the API wrote them (:class:`SpoolWriter`), so memory stays flat however many records
a walk brings (DuckDB holds a whole chunk, several times its size, while it describes one).

DuckDB reads the chunks with the schema of all their records (:func:`describe`: columns are the
union of the records' fields; a field with values of several JSON types becomes text; strings are
never guessed to be dates). A full read staged as Parquet does not wait for the walk to end
(:class:`ChunkStager`): on a thread, while the walk goes on, each chunk is described as it comes
and the chunks are written as Parquet files of several chunks each: a file takes chunks until they
hold a quarter of what was staged before it (at least one chunk, at most 64 MB of JSON), so a long
walk makes few large files and what is left to write after the last page stays small. A chunk
whose fields the schema so far does not hold (a new field, a wider type) widens it, describing that
chunk together with the chunks that made the schema what it was (the union over every record, as
one description of all of them gives), and the files written under a narrower schema are written
again from their chunks at the end, so every staged file has the final schema and no value is lost.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from servicetsunami.connectors.duckdb_support import ident, lit, sql_literal, storable_cast
from servicetsunami.errors import SourceError

Columns = list[tuple[str, str]]  # (name, DuckDB type) of every field

# strings never guessed to be dates; records up to 64 MB
_READ_OPTIONS = "format='array', dateformat='NEVER', timestampformat='NEVER', maximum_object_size=67108864"
_MAX_PART_BYTES = 64 * 1024 * 1024  # JSON text per staged Parquet file


class SpoolWriter:
    """Writes pages of records (their JSON texts, comma-separated) into chunk files under
    ``directory``, handing each full chunk to ``on_chunk``."""

    def __init__(
        self,
        directory: Path,
        name: str,
        *,
        chunk_bytes: int,
        on_chunk: Callable[[Path], None] | None = None,
    ) -> None:
        self.files: list[Path] = []
        self.records = 0
        self._directory, self._name = directory, name
        self._chunk_bytes = chunk_bytes
        self._on_chunk = on_chunk
        self._out: Any = None
        self._written = 0  # characters in the open chunk

    def write(self, texts: str, count: int) -> None:
        if not count:
            return
        if self._out is None:
            path = self._directory / f"{self._name}-{len(self.files):05d}.json"
            self._out = open(path, "w", encoding="utf-8")  # noqa: SIM115  # closed by _cut, across calls
            self.files.append(path)
            self._out.write("[")
        else:
            self._out.write(",\n")
        self._out.write(texts)
        self._written += len(texts)
        self.records += count
        if self._written >= self._chunk_bytes:
            self._cut()

    def close(self) -> list[Path]:
        """Finish the last chunk; the chunk files, in order."""
        self._cut()
        return self.files

    def discard(self) -> None:
        """Close the open chunk without handing it on (the walk failed)."""
        if self._out is not None:
            self._out.close()
            self._out = None

    def _cut(self) -> None:
        if self._out is None:
            return
        self._out.write("]")
        self._out.close()
        self._out = None
        self._written = 0
        if self._on_chunk is not None:
            self._on_chunk(self.files[-1])


def describe(con: duckdb.DuckDBPyConnection, files: list[Path], *, nested_json: bool) -> Columns:
    """The fields of every record in ``files`` and their DuckDB types. With ``nested_json``, objects
    and lists (and fields of mixed types) are read as JSON text."""
    depth = ", maximum_depth=2" if nested_json else ""  # what is inside a nested value stays unread
    described = con.execute(
        f"DESCRIBE SELECT * FROM read_json({_files(files)}, {_READ_OPTIONS}, sample_size=-1{depth})"
    )
    return [
        (str(name), "JSON" if nested_json and _is_nested(str(kind)) else str(kind))
        for name, kind, *_ in described.fetchall()
    ]


def relation(files: list[Path], columns: Columns) -> str:
    """The chunks as a DuckDB relation, its columns given (so a read does not sample them again)."""
    given = ", ".join(f"{lit(name)}: {lit(kind)}" for name, kind in columns)
    return f"read_json({_files(files)}, {_READ_OPTIONS}, columns={{{given}}})"


def select(files: list[Path], columns: Columns, extra_columns: dict[str, Any], *, where: str = "true") -> str:
    """DuckDB SQL reading the records of ``files`` with Delta-storable types, ``extra_columns``
    appended as constants."""
    extra = [f"{sql_literal(v)} AS {ident(k)}" for k, v in extra_columns.items()]
    if not files:
        return f"SELECT {', '.join(extra) or 'NULL AS empty'} LIMIT 0"
    parts = []
    for name, duck_type in columns:
        target = storable_cast(duck_type) or _nested_json_cast(duck_type)
        parts.append(f"CAST({ident(name)} AS {target}) AS {ident(name)}" if target else ident(name))
    return f"SELECT {', '.join(parts + extra)} FROM {relation(files, columns)} WHERE {where}"


def copy_parquet(con: duckdb.DuckDBPyConnection, query: str, target: Path, *, folder: bool) -> None:
    """``query``'s rows as Parquet: into the folder ``target`` (files of at most 64 MB) or the file."""
    options = "FORMAT parquet, COMPRESSION snappy"
    if folder:
        options += ", FILE_SIZE_BYTES '64MB', OVERWRITE_OR_IGNORE true"
    con.execute(f"COPY ({query}) TO {lit(str(target))} ({options})")


class ChunkStager:
    """Stages the chunks handed to :meth:`submit` as Parquet files in ``directory``, on a thread,
    while the walk goes on (see the module docstring for the files' sizes and how the schema grows)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        directory: Path,
        *,
        nested_json: bool,
        extra_columns: dict[str, Any],
        stream: str,
    ) -> None:
        self._con = con
        self._directory = directory
        self._nested_json = nested_json
        self._extra = extra_columns
        self._stream = stream
        self.columns: Columns | None = None
        self._makers: list[Path] = []  # the chunks whose description made the schema what it is
        self._parts: list[tuple[list[Path], Path, Columns]] = []  # chunks, their Parquet file, its schema
        self._pending: list[Path] = []  # described chunks not yet in a file
        self._pending_bytes = 0
        self._staged_bytes = 0
        self._chunks: queue.SimpleQueue[Path | None] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._work, name=f"rest-stage-{stream}", daemon=True)
        self._thread.start()

    def submit(self, chunk: Path) -> None:
        if self._error is not None:
            raise self._failure()
        self._chunks.put(chunk)

    def finish(self) -> Columns | None:
        """Wait for every chunk to be staged and write again the parts staged under a narrower
        schema; the final schema (None when no chunk came)."""
        self._chunks.put(None)
        self._thread.join()
        try:
            if self._error is not None:
                raise self._failure()
            if self._stopped.is_set():  # interrupted between two chunks: some were skipped
                raise SourceError(f"reading {self._stream} was cancelled")
            self._flush()
            for chunks, part, columns in self._parts:
                if columns != self.columns:
                    self._stage(chunks, part)
        except duckdb.Error as exc:
            raise _read_failed(self._stream, exc) from None
        finally:
            self._con.close()
        return self.columns

    def abort(self) -> None:
        """Stop staging (the walk failed or was cancelled) and wait for the thread to end."""
        self._stopped.set()
        self._chunks.put(None)
        self._con.interrupt()
        self._thread.join()
        self._con.close()

    def interrupt(self) -> None:
        self._stopped.set()
        self._con.interrupt()

    def _work(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            if self._stopped.is_set() or self._error is not None:
                continue
            try:
                self._take(chunk)
            except BaseException as exc:  # handed to the walk's thread by submit and finish
                self._error = exc

    def _take(self, chunk: Path) -> None:
        own = describe(self._con, [chunk], nested_json=self._nested_json)
        if self.columns is None:
            self.columns, self._makers = own, [chunk]
        else:
            known = dict(self.columns)
            if any(known.get(name) != kind for name, kind in own):
                wider = describe(self._con, [*self._makers, chunk], nested_json=self._nested_json)
                if wider != self.columns:
                    self.columns = wider
                    self._makers.append(chunk)
        self._pending.append(chunk)
        self._pending_bytes += chunk.stat().st_size
        if self._pending_bytes >= min(self._staged_bytes // 4, _MAX_PART_BYTES):
            self._flush()

    def _flush(self) -> None:
        """Write the pending chunks as one Parquet file."""
        if not self._pending:
            return
        assert self.columns is not None
        part = self._directory / f"part-{len(self._parts):05d}.parquet"
        self._stage(self._pending, part)
        self._parts.append((self._pending, part, self.columns))
        self._staged_bytes += self._pending_bytes
        self._pending, self._pending_bytes = [], 0

    def _stage(self, chunks: list[Path], part: Path) -> None:
        assert self.columns is not None
        copy_parquet(self._con, select(chunks, self.columns, self._extra), part, folder=False)

    def _failure(self) -> BaseException:
        error = self._error
        if isinstance(error, duckdb.Error):
            return _read_failed(self._stream, error)
        assert error is not None
        return error


def _read_failed(stream: str, exc: duckdb.Error) -> SourceError:
    return SourceError(f"reading {stream} failed: {str(exc).splitlines()[0][:300]}")


def _files(files: list[Path]) -> str:
    return "[" + ", ".join(lit(str(path)) for path in files) + "]"


def _is_nested(duck_type: str) -> bool:
    upper = duck_type.upper()
    return upper.endswith("]") or upper.startswith(("STRUCT", "MAP", "UNION")) or upper == "JSON"


def _nested_json_cast(duck_type: str) -> str | None:
    """Nested types holding DuckDB's JSON type (fields of mixed or only null values) as JSON text."""
    if "JSON" in duck_type.upper() and duck_type.upper() != "JSON":
        return "VARCHAR"
    return None
