"""The REST source: each resource of a declarative API description (:mod:`.config`) is a stream.

A read walks the resource's pages (its paginator; for a child resource, once per record of its
parent, the path filled from that record) and spools the selected records to chunk files of JSON
on local disk (:mod:`.spool`), so memory stays flat however many records there are. Records go to
the spool as the API wrote them when the selector is a path of member names to a list of objects
(each page is parsed once, and the list's text kept, see :func:`.jsonpath.load_selecting`);
otherwise (values that are not objects, wildcards, the ``_parent_*`` fields of a child resource)
the parsed records are encoded again.
DuckDB then reads the spool, or stages it as Parquet for the engine to commit, with the schema of
all its records (columns are the union of the records' fields; a field with values of several JSON
types becomes text), and answers the read and the cursor bounds from it: the API is walked once
per run, and every batch of an incremental sync is a range of the same spool. A full read staged
as Parquet is staged chunk by chunk while the walk goes on (:class:`.spool.ChunkStager`). Strings
stay the API's text (dates are not guessed), numbers stay numbers; nested objects and lists land as
JSON text (compact, read by DuckDB as JSON) or as structs and lists (``nested``). Every field's type
is sampled from all the records once per spool and given to each read of it.

Incremental reads: the cursor field's values compare in their JSON type (numbers as numbers, strings
as text, so ISO-8601 timestamps must share one format and zone to order correctly). The request
parameter ``incremental.param`` carries the last committed cursor value (or ``start_value``), and
records at or below it are dropped here whatever the API returns, so an API whose parameter means
"at or after" lands nothing twice.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, urljoin

import duckdb
import pyarrow as pa

from servicetsunami.connectors.base import (
    CheckResult,
    ReadRequest,
    Source,
    SourceCapabilities,
    SourceColumn,
    StreamInfo,
)
from servicetsunami.connectors.duckdb_support import ident, lit, sql_literal
from servicetsunami.connectors.rest import jsonpath
from servicetsunami.connectors.rest.client import Cancelled, RestClient, Vet
from servicetsunami.connectors.rest.config import Resource, RestConfig
from servicetsunami.connectors.rest.spool import (
    ChunkStager,
    Columns,
    SpoolWriter,
    copy_parquet,
    describe,
    relation,
    select,
)
from servicetsunami.errors import InvalidInput, SourceError, TsunamiError


@dataclass
class _Spool:
    files: list[Path]  # the chunks, in order
    fetched_after: Any  # the cursor value the walk started after (None: from the start)
    records: int
    columns: Columns | None = None  # (name, DuckDB type) of every field, once described


class RestSource(Source):
    kind: ClassVar[str] = "rest"
    capabilities: ClassVar[SourceCapabilities] = SourceCapabilities(incremental=True, stage_parquet=True)

    def __init__(self, config: RestConfig, *, vet: Vet, threads: int = 0, chunk_bytes: int = 4 * 1024 * 1024) -> None:
        self.config = config
        self._client = RestClient(config, vet)
        self._threads = threads
        self._chunk_bytes = chunk_bytes  # the size of the spool's chunks (see :mod:`.spool`)
        self._stager: ChunkStager | None = None
        self._dir: Path | None = None
        self._spools: dict[str, _Spool] = {}
        self._duck: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.RLock()
        self._pages = 0

    # -- check and discover -------------------------------------------------------------------

    def check(self) -> CheckResult:
        started = time.perf_counter()
        resource = next((r for r in self.config.resources if r.parent is None), self.config.resources[0])
        try:
            next(self._pages_of(resource, {}, None, limit=1), None)
        except TsunamiError as exc:
            problem = str(exc.details.get("problem") or exc.code)
            return CheckResult(False, _ms(started), problem=problem, diagnosis=exc.message)
        return CheckResult(True, _ms(started), server_version=None)

    def discover(self, *, schema: str | None = None) -> list[StreamInfo]:
        if schema is not None:
            raise InvalidInput("a REST source has no schemas; list its streams without one")
        return [self._describe(r) for r in self.config.resources]

    def stream(self, name: str, /) -> StreamInfo:
        return self._describe(self._resource(name))

    def _resource(self, name: str) -> Resource:
        resource = self.config.resource(name)
        if resource is None:
            names = ", ".join(r.name for r in self.config.resources)
            raise InvalidInput(f"the rest source has no stream {name!r}; its streams: {names}")
        return resource

    def _describe(self, resource: Resource) -> StreamInfo:
        """The stream with the columns of its first page's records."""
        sample = SpoolWriter(self._workdir(), f"sample-{resource.name}", chunk_bytes=self._chunk_bytes)
        self._spool_records(resource, sample, after=None, pages=1)
        files = sample.close()
        columns: list[SourceColumn] = []
        if sample.records:
            columns = [SourceColumn(name, kind) for name, kind in self._columns(_Spool(files, None, sample.records))]
        cursor = resource.incremental.cursor_field if resource.incremental else None
        return StreamInfo(
            name=resource.name,
            kind="endpoint",
            columns=columns,
            primary_key=list(resource.primary_key),
            cursor_candidates=[cursor] if cursor else [],
        )

    # -- reading ------------------------------------------------------------------------------

    def cursor_bound(self, request: ReadRequest, /, *, rows: int) -> Any:
        if not request.cursor_column:
            raise InvalidInput("an incremental read needs a cursor column")
        spool = self._spool(request)
        if not spool.records:
            return None
        cursor = self._cursor(spool, request)
        col = cursor[0]
        where = self._range(request, cursor, upto=False)
        row = (
            self._duckdb()
            .execute(
                f"SELECT max({col}) FROM (SELECT {col} FROM {self._records(spool)} "
                f"WHERE {where} ORDER BY {col} LIMIT {max(int(rows), 1)})"
            )
            .fetchone()
        )
        return row[0] if row else None

    def read(self, request: ReadRequest, /) -> pa.RecordBatchReader:
        select = self._select(request)
        try:
            return self._duckdb().execute(select).to_arrow_reader(100_000)
        except duckdb.Error as exc:
            raise SourceError(f"reading {request.stream} failed: {str(exc).splitlines()[0][:300]}") from None

    def stage_parquet(self, request: ReadRequest, directory: Path, /) -> None:
        resource = self._resource(request.stream)
        with self._lock:
            walked = resource.name in self._spools
        if not request.cursor_column and not walked:
            self._stage_while_walking(resource, request, directory)
            return
        query = self._select(request)
        try:
            copy_parquet(self._duckdb(), query, directory, folder=True)
        except duckdb.Error as exc:
            raise SourceError(f"reading {request.stream} failed: {str(exc).splitlines()[0][:300]}") from None

    def _stage_while_walking(self, resource: Resource, request: ReadRequest, directory: Path) -> None:
        """A full read staged chunk by chunk on a thread while the walk goes on; the spool is kept
        for later reads of this run."""
        with self._lock:
            stager = ChunkStager(
                _connect(threads=1),  # one core stages; the walk keeps the other
                directory,
                nested_json=self.config.nested == "json",
                extra_columns=request.extra_columns,
                stream=request.stream,
            )
            self._stager = stager
            writer = SpoolWriter(self._workdir(), resource.name, chunk_bytes=self._chunk_bytes, on_chunk=stager.submit)
            try:
                self._spool_records(resource, writer, after=None)
                files = writer.close()
                columns = stager.finish()
            except BaseException:
                writer.discard()
                stager.abort()
                raise
            finally:
                self._stager = None
            spool = _Spool(files, None, writer.records, columns)
            self._spools[resource.name] = spool
            if not spool.records:
                copy_parquet(self._duckdb(), self._select(request), directory, folder=True)

    def _select(self, request: ReadRequest) -> str:
        """DuckDB SQL reading the requested records from the spool, with Delta-storable types."""
        spool = self._spool(request)
        if not spool.records:
            return select([], [], request.extra_columns)
        where = "true"
        if request.cursor_column:
            where = self._range(request, self._cursor(spool, request), upto=True)
        return select(spool.files, self._columns(spool), request.extra_columns, where=where)

    def progress(self) -> float | None:
        return None

    def cancel(self) -> None:
        self._client.cancelled.set()
        duck, stager = self._duck, self._stager
        if duck is not None:
            duck.interrupt()
        if stager is not None:
            stager.interrupt()

    def close(self) -> None:
        with self._lock:
            self._client.close()
            if self._duck is not None:
                self._duck.close()
                self._duck = None
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
                self._dir = None
            self._spools.clear()

    # -- internals ----------------------------------------------------------------------------

    def _cursor(self, spool: _Spool, request: ReadRequest) -> tuple[str, str]:
        """The cursor column, quoted, and its DuckDB type in the spool."""
        types = dict(self._columns(spool))
        if request.cursor_column not in types:
            raise InvalidInput(f"cursor column {request.cursor_column!r} is not a field of {request.stream}'s records")
        return ident(str(request.cursor_column)), types[str(request.cursor_column)]

    def _columns(self, spool: _Spool) -> Columns:
        """The spool's fields and their DuckDB types, sampled from every record once per spool."""
        with self._lock:
            if spool.columns is None:
                spool.columns = describe(self._duckdb(), spool.files, nested_json=self.config.nested == "json")
            return spool.columns

    def _records(self, spool: _Spool) -> str:
        return relation(spool.files, self._columns(spool))

    def _range(self, request: ReadRequest, cursor: tuple[str, str], *, upto: bool) -> str:
        resource = self._resource(request.stream)
        col, duck_type = cursor
        filters = [f"{col} IS NOT NULL"]
        if request.cursor_after is not None:
            filters.append(f"{col} > {_literal(request.cursor_after, duck_type)}")
        elif resource.incremental is not None and resource.incremental.start_value is not None:
            filters.append(f"{col} >= {_literal(resource.incremental.start_value, duck_type)}")
        if upto and request.cursor_upto is not None:
            filters.append(f"{col} <= {_literal(request.cursor_upto, duck_type)}")
        return " AND ".join(filters)

    def _spool(self, request: ReadRequest) -> _Spool:
        """The resource's records from ``request.cursor_after`` on, walked once and kept on disk."""
        resource = self._resource(request.stream)
        after = request.cursor_after if request.cursor_column else None
        with self._lock:
            known = self._spools.get(resource.name)
            if known is not None and (known.fetched_after is None or _at_or_after(after, known.fetched_after)):
                return known
            writer = SpoolWriter(self._workdir(), resource.name, chunk_bytes=self._chunk_bytes)
            try:
                self._spool_records(resource, writer, after=after)
            except BaseException:
                writer.discard()
                raise
            spool = _Spool(writer.close(), after, writer.records)
            self._spools[resource.name] = spool
            return spool

    def _spool_records(self, resource: Resource, out: SpoolWriter, *, after: Any, pages: int | None = None) -> None:
        encode = _encoder()
        try:
            for parent_values in self._parents(resource, after):
                extra = {f"_parent_{k}": v for k, v in parent_values.items()}
                for records, texts in self._pages_of(resource, parent_values, after, limit=pages):
                    if texts is None or extra:
                        if extra or not all(type(record) is dict for record in records):
                            records = [
                                {**(record if isinstance(record, dict) else {"value": record}), **extra}
                                for record in records
                            ]
                        texts = ",".join("".join(encode(record, 0)) for record in records)
                    out.write(texts, len(records))  # otherwise the API's own text of the records
                if pages is not None and out.records:
                    break
        except Cancelled:
            raise SourceError(f"reading {resource.name} was cancelled") from None

    def _parents(self, resource: Resource, after: Any) -> Iterator[dict[str, Any]]:
        """The path values for each call of ``resource``: one empty set for a top-level resource."""
        if resource.parent is None:
            yield {}
            return
        parent = self._resource(resource.parent.resource)
        placeholders = resource.placeholders()
        for grand in self._parents(parent, None):
            for records, _texts in self._pages_of(parent, grand, None):
                for record in records:
                    if not isinstance(record, dict):
                        continue
                    values = {name: record.get(field) for name, field in placeholders.items()}
                    if any(v is None for v in values.values()):
                        missing = [placeholders[n] for n, v in values.items() if v is None]
                        raise SourceError(
                            f"a record of {parent.name} has no {', '.join(missing)} for the path of {resource.name}"
                        )
                    yield values

    def _pages_of(
        self, resource: Resource, path_values: dict[str, Any], after: Any, *, limit: int | None = None
    ) -> Iterator[tuple[list[Any], str | None]]:
        """The records of each page of one walk of ``resource``, with their text when the page kept
        it (:meth:`RestClient.get_page`)."""
        path = resource.path
        for name, value in path_values.items():
            path = path.replace("{" + name + "}", quote(str(value), safe=""))
        url: str | None = urljoin(self.config.base_url.rstrip("/") + "/", path.lstrip("/"))
        params: dict[str, Any] = {k: _param(v) for k, v in resource.params.items()}
        if resource.incremental is not None and resource.incremental.param:
            since = after if after is not None else resource.incremental.start_value
            if since is not None:
                params[resource.incremental.param] = _param(since)
        selector = jsonpath.parse(resource.record_selector)
        paginator = resource.paginator
        page_number = getattr(paginator, "start", 1)
        offset = 0
        pages = 0
        while url is not None:
            query = dict(params)
            if paginator.type == "page_number":
                query[paginator.page_param] = page_number
                if paginator.page_size_param and paginator.page_size:
                    query[paginator.page_size_param] = paginator.page_size
            elif paginator.type == "offset":
                query[paginator.offset_param] = offset
                query[paginator.limit_param] = paginator.limit
            body, texts, response = self._client.get_page(url, query if query else None, selector)
            pages += 1
            self._pages += 1
            if pages > self.config.max_pages:
                raise SourceError(
                    f"{resource.name} has more than max_pages ({self.config.max_pages}) pages; check its paginator "
                    "or raise max_pages"
                )
            records = jsonpath.records(body, selector)
            yield records, texts
            if limit is not None and pages >= limit:
                return
            next_url: str | None = None
            if paginator.type == "page_number":
                total = (
                    jsonpath.first(body, jsonpath.parse(paginator.total_pages_path))
                    if paginator.total_pages_path
                    else None
                )
                last = page_number - paginator.start + 1 >= int(total) if isinstance(total, int | float) else False
                if records and not last:
                    page_number += 1
                    next_url = url
            elif paginator.type == "offset":
                offset += len(records)
                total = jsonpath.first(body, jsonpath.parse(paginator.total_path)) if paginator.total_path else None
                more = offset < int(total) if isinstance(total, int | float) else len(records) >= paginator.limit
                if records and more:
                    next_url = url
            elif paginator.type == "cursor":
                cursor = jsonpath.first(body, jsonpath.parse(paginator.cursor_path))
                if cursor not in (None, "") and records:
                    params[paginator.cursor_param] = cursor
                    next_url = url
            elif paginator.type == "next_url":
                found = jsonpath.first(body, jsonpath.parse(paginator.next_url_path))
                if isinstance(found, str) and found:
                    next_url, params = urljoin(str(url), found), {}  # the next URL carries its query
            elif paginator.type == "link_header":
                link = response.links.get(paginator.rel, {}).get("url")
                if link:
                    next_url, params = urljoin(str(url), link), {}
            url = next_url

    def _workdir(self) -> Path:
        with self._lock:
            if self._dir is None:
                self._dir = Path(tempfile.mkdtemp(prefix="tsunami-rest-"))
            return self._dir

    def _duckdb(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._duck is None:
                self._duck = _connect(threads=self._threads)
            return self._duck


def _connect(*, threads: int) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB for the spool's reads (``threads`` 0: as many as DuckDB picks)."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET autoinstall_known_extensions = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def _encoder() -> Any:
    """The C JSON encoder, made once per walk: compact, ASCII, called once per record."""

    def refuse(value: Any) -> Any:
        raise TypeError(f"{type(value).__name__} is not JSON")

    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # an interpreter without the C accelerator
        dumps = json.JSONEncoder(separators=(",", ":")).encode
        return lambda value, _level: (dumps(value),)
    return make(None, refuse, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True)


def _literal(value: Any, duck_type: str) -> str:
    """A cursor value compared in the column's type: text columns compare as the API's text."""
    if duck_type.upper() == "VARCHAR" and not isinstance(value, str):
        return lit(str(_param(value)))
    return sql_literal(value)


def _param(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _at_or_after(after: Any, fetched_after: Any) -> bool:
    if after is None:
        return False
    try:
        return bool(after >= fetched_after)
    except TypeError:
        return False


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
