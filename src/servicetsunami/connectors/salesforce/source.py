"""The Salesforce source: each queryable object is a stream, read through the REST API.

``discover`` lists ``/sobjects`` (or the configured ``objects``) and describes each one
(``/sobjects/{name}/describe``) for its fields and their types (:mod:`.fields`). A read is one SOQL
query over every field (``query``, or ``queryAll`` with ``include_deleted``, so deleted records land
with ``IsDeleted``), paged by ``nextRecordsUrl``; each page (up to 2,000 records) becomes one Arrow
batch, so memory stays flat. Incremental reads filter and order on the cursor field (``SystemModstamp``
by default: it changes with every write, system ones included), and :meth:`SalesforceSource.cursor_bound`
asks for the cursor values only, ordered, to close a batch of about the requested rows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import pyarrow as pa

from servicetsunami.connectors.base import (
    CheckResult,
    ReadRequest,
    Source,
    SourceCapabilities,
    SourceColumn,
    StreamInfo,
    with_constants,
)
from servicetsunami.connectors.http import Cancelled, Vet
from servicetsunami.connectors.salesforce import fields
from servicetsunami.connectors.salesforce.client import SalesforceClient
from servicetsunami.connectors.salesforce.config import SalesforceConfig
from servicetsunami.errors import InvalidInput, SourceError, TsunamiError

CURSORS = ("SystemModstamp", "LastModifiedDate", "CreatedDate")


class SalesforceSource(Source):
    kind: ClassVar[str] = "salesforce"
    capabilities: ClassVar[SourceCapabilities] = SourceCapabilities(incremental=True, stage_parquet=False)

    def __init__(self, config: SalesforceConfig, *, vet: Vet) -> None:
        self.config = config
        self._client = SalesforceClient(config, vet)
        self._described: dict[str, tuple[StreamInfo, pa.Schema]] = {}
        self._lock = threading.Lock()
        self._read_total: int | None = None
        self._read_done = 0

    # -- check and discover -------------------------------------------------------------------

    def check(self) -> CheckResult:
        started = time.perf_counter()
        try:
            body, _ = self._client.get_json(self.config.api("/limits"))
        except TsunamiError as exc:
            problem = str(exc.details.get("problem") or exc.code)
            return CheckResult(False, _ms(started), problem=problem, diagnosis=exc.message)
        except Cancelled:
            return CheckResult(False, _ms(started), problem="cancelled", diagnosis="the check was cancelled")
        remaining = (body.get("DailyApiRequests") or {}).get("Remaining") if isinstance(body, dict) else None
        version = f"API v{self.config.api_version}" + (f", {remaining} requests left today" if remaining else "")
        return CheckResult(True, _ms(started), server_version=version)

    def discover(self, *, schema: str | None = None) -> list[StreamInfo]:
        if schema is not None:
            raise InvalidInput("a Salesforce source has no schemas; list its objects without one")
        names = self.config.objects or self._queryable()
        with ThreadPoolExecutor(max_workers=min(8, max(len(names), 1))) as pool:
            return [info for info, _ in pool.map(self._describe, names)]

    def stream(self, name: str, /) -> StreamInfo:
        return self._describe(name)[0]

    # -- reading ------------------------------------------------------------------------------

    def read(self, request: ReadRequest, /) -> pa.RecordBatchReader:
        info, schema = self._describe(request.stream)
        soql = f"SELECT {', '.join(schema.names)} FROM {info.name}"
        kinds = {c.name: c.source_type for c in info.columns}
        if request.cursor_column:
            cursor = self._cursor_type(schema, request)
            soql += self._where(request, cursor, upto=True) + f" ORDER BY {request.cursor_column} ASC"
        pages = self._pages(soql)
        first = next(pages, None)  # the query runs now, so its errors surface in the read

        def batches() -> Iterator[pa.RecordBatch]:
            if first is None:
                return
            for page in _chain(first, pages):
                rows = [
                    {n: fields.convert(r.get(n), schema.field(n).type, kinds[n]) for n in schema.names} for r in page
                ]
                self._read_done += len(rows)
                yield pa.RecordBatch.from_pylist(rows, schema=schema)

        return with_constants(pa.RecordBatchReader.from_batches(schema, batches()), request.extra_columns)

    def cursor_bound(self, request: ReadRequest, /, *, rows: int) -> Any:
        if not request.cursor_column:
            raise InvalidInput("an incremental read needs a cursor column")
        info, schema = self._describe(request.stream)
        cursor = self._cursor_type(schema, request)
        limit = max(int(rows), 1)
        soql = (
            f"SELECT {request.cursor_column} FROM {info.name}{self._where(request, cursor, upto=False)} "
            f"ORDER BY {request.cursor_column} ASC LIMIT {limit}"
        )
        last: Any = None
        for page in self._pages(soql):
            if page:
                last = page[-1].get(request.cursor_column)
        return None if last is None else fields.convert(last, cursor)

    def progress(self) -> float | None:
        total = self._read_total
        if not total:
            return None
        return min(100.0, 100.0 * self._read_done / total)

    def cancel(self) -> None:
        self._client.cancelled.set()

    def close(self) -> None:
        self._client.close()

    # -- internals ----------------------------------------------------------------------------

    def _queryable(self) -> list[str]:
        body, _ = self._client.get_json(self.config.api("/sobjects"))
        objects = body.get("sobjects") if isinstance(body, dict) else None
        if not isinstance(objects, list):
            raise SourceError("Salesforce answered /sobjects without its objects", problem="json")
        return [str(o["name"]) for o in objects if isinstance(o, dict) and o.get("queryable") and o.get("name")]

    def _describe(self, name: str) -> tuple[StreamInfo, pa.Schema]:
        with self._lock:
            known = self._described.get(name)
        if known is not None:
            return known
        if not name or not name.replace("_", "").isalnum():
            raise InvalidInput(f"{name!r} is not a Salesforce object's API name")
        if self.config.objects and name not in self.config.objects:
            raise InvalidInput(
                f"the salesforce source has no stream {name!r}; its streams: {', '.join(self.config.objects)}"
            )
        try:
            body, _ = self._client.get_json(self.config.api(f"/sobjects/{name}/describe"))
        except SourceError as exc:
            if exc.details.get("problem") == "not_found":
                raise InvalidInput(
                    f"the salesforce source has no stream {name!r}; discover lists its objects"
                ) from None
            raise
        except Cancelled:
            raise SourceError(f"describing {name} was cancelled") from None
        described = body.get("fields") if isinstance(body, dict) else None
        if not isinstance(described, list):
            raise SourceError(f"Salesforce answered the describe of {name} without its fields", problem="json")
        if isinstance(body, dict) and body.get("queryable") is False:
            raise SourceError(f"{name} cannot be queried", problem="permission")
        arrow_fields, columns = [], []
        for f in described:
            if not isinstance(f, dict) or f.get("type") in fields.SKIPPED or not f.get("name"):
                continue
            arrow_fields.append(pa.field(str(f["name"]), fields.arrow_type(f, compound=self.config.compound)))
            columns.append(SourceColumn(str(f["name"]), str(f["type"]), bool(f.get("nillable", True))))
        names = {c.name for c in columns}
        info = StreamInfo(
            name=str(body.get("name") or name),
            kind="object",
            columns=columns,
            primary_key=["Id"] if "Id" in names else [],
            cursor_candidates=[c for c in CURSORS if c in names],
        )
        found = (info, pa.schema(arrow_fields))
        with self._lock:
            self._described[name] = found
        return found

    def _cursor_type(self, schema: pa.Schema, request: ReadRequest) -> pa.DataType:
        if request.cursor_column not in schema.names:
            raise InvalidInput(f"cursor column {request.cursor_column!r} is not a field of {request.stream}")
        return schema.field(request.cursor_column).type

    def _where(self, request: ReadRequest, cursor: pa.DataType, *, upto: bool) -> str:
        column = request.cursor_column
        filters = [f"{column} != null"]
        try:
            if request.cursor_after is not None:
                filters.append(f"{column} > {fields.soql_literal(request.cursor_after, cursor)}")
            if upto and request.cursor_upto is not None:
                filters.append(f"{column} <= {fields.soql_literal(request.cursor_upto, cursor)}")
        except (ValueError, TypeError):
            raise InvalidInput(
                f"the cursor of {request.stream} cannot be compared with {column!r} ({cursor})"
            ) from None
        return " WHERE " + " AND ".join(filters)

    def _pages(self, soql: str) -> Iterator[list[dict[str, Any]]]:
        """The records of each page of one SOQL query, following ``nextRecordsUrl``."""
        endpoint = "/queryAll" if self.config.include_deleted else "/query"
        url: str | None = self.config.api(endpoint)
        params: dict[str, Any] | None = {"q": soql}
        first = True
        try:
            while url is not None:
                body, _ = self._client.get_json(url, params)
                if not isinstance(body, dict) or not isinstance(body.get("records"), list):
                    raise SourceError("Salesforce answered a query without its records", problem="json")
                if first:
                    self._read_total, self._read_done, first = int(body.get("totalSize") or 0), 0, False
                yield [r for r in body["records"] if isinstance(r, dict)]
                following = body.get("nextRecordsUrl")
                done = body.get("done", True)
                if done or not isinstance(following, str) or not following.startswith("/services/data/"):
                    url = None
                else:
                    url, params = f"{self.config.instance_url}{following}", None
        except Cancelled:
            raise SourceError("the Salesforce read was cancelled") from None


def _chain(first: list[dict[str, Any]], rest: Iterator[list[dict[str, Any]]]) -> Iterator[list[dict[str, Any]]]:
    yield first
    yield from rest


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
