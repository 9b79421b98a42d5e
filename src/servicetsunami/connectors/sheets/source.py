"""The Google Sheets source: each sheet of a spreadsheet (or each configured A1 range) is a stream.

With a service account, a stream is read with ``values.get`` (unformatted values, dates and times as
serial numbers; see :mod:`.values` for the header row and the types), its number formats sampled with
``spreadsheets.get`` (``includeGridData`` over the first ``sample_rows`` rows); discovery reads every
stream's first rows in one ``values.batchGet``. A public sheet is read from its CSV export, typed by
DuckDB's CSV sniffer.

A spreadsheet holds at most ten million cells, so a stream is read whole into one Arrow table per run,
then handed out in batches. Sheets have no server-side filter: an incremental read (by any column
that grows, e.g. a timestamp column of an append-only log) reads the sheet and keeps the rows above
the saved cursor, so a sync commits only those.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from servicetsunami.connectors.base import (
    CheckResult,
    ReadRequest,
    Source,
    SourceCapabilities,
    SourceColumn,
    StreamInfo,
    with_constants,
)
from servicetsunami.connectors.duckdb_support import ident, lit, storable_cast
from servicetsunami.connectors.files.reader import unique_names
from servicetsunami.connectors.http import Cancelled, Vet
from servicetsunami.connectors.sheets import values
from servicetsunami.connectors.sheets.client import SheetsClient
from servicetsunami.connectors.sheets.config import GoogleUrls, SheetsConfig
from servicetsunami.connectors.sheets.ranges import head, quoted
from servicetsunami.errors import InvalidInput, SourceError, TsunamiError

_VALUES = {"valueRenderOption": "UNFORMATTED_VALUE", "dateTimeRenderOption": "SERIAL_NUMBER", "majorDimension": "ROWS"}
_FORMATS = "sheets(data(rowData(values(effectiveValue,effectiveFormat(numberFormat(type))))))"
_META = "properties(title,timeZone),sheets(properties(sheetId,title,gridProperties(rowCount,columnCount)))"


@dataclass(frozen=True, slots=True)
class _Stream:
    name: str
    range: str  # A1 range (service account) or "" (public)
    gid: int = 0


class SheetsSource(Source):
    kind: ClassVar[str] = "sheets"
    capabilities: ClassVar[SourceCapabilities] = SourceCapabilities(incremental=True, stage_parquet=False)

    def __init__(self, config: SheetsConfig, *, urls: GoogleUrls, vet: Vet) -> None:
        self.config = config
        self.urls = urls
        self._client = SheetsClient(config, urls, vet)
        self._meta: dict[str, Any] | None = None
        self._tables: dict[str, pa.Table] = {}
        self._lock = threading.RLock()
        self._duck: duckdb.DuckDBPyConnection | None = None

    # -- check and discover -------------------------------------------------------------------

    def check(self) -> CheckResult:
        started = time.perf_counter()
        try:
            if self.config.auth == "public":
                self._export(self.config.sheets[0].gid).unlink()
                version = None
            else:
                version = f"{len(self._streams())} sheets"
        except TsunamiError as exc:
            problem = str(exc.details.get("problem") or exc.code)
            return CheckResult(False, _ms(started), problem=problem, diagnosis=exc.message)
        except Cancelled:
            return CheckResult(False, _ms(started), problem="cancelled", diagnosis="the check was cancelled")
        return CheckResult(True, _ms(started), server_version=version)

    def discover(self, *, schema: str | None = None) -> list[StreamInfo]:
        if schema is not None:
            raise InvalidInput("a Google Sheets source has no schemas; list its streams without one")
        streams = self._streams()
        if self.config.auth == "public":
            return [self._info(s, self._table(s)) for s in streams]
        heads = self._batch_values([head(s.range, self._sample_rows()) for s in streams])
        return [self._info_from_sample(s, rows) for s, rows in zip(streams, heads, strict=True)]

    def stream(self, name: str, /) -> StreamInfo:
        found = self._find(name)
        if self.config.auth == "public":
            return self._info(found, self._table(found))
        return self._info_from_sample(found, self._batch_values([head(found.range, self._sample_rows())])[0])

    # -- reading ------------------------------------------------------------------------------

    def read(self, request: ReadRequest, /) -> pa.RecordBatchReader:
        table = self._selected(request, upto=True)
        reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=50_000))
        return with_constants(reader, request.extra_columns)

    def cursor_bound(self, request: ReadRequest, /, *, rows: int) -> Any:
        if not request.cursor_column:
            raise InvalidInput("an incremental read needs a cursor column")
        table = self._selected(request, upto=False)
        if not table.num_rows:
            return None
        ordered = pc.sort_indices(table[request.cursor_column])
        return table[request.cursor_column][ordered[min(max(int(rows), 1), table.num_rows) - 1].as_py()].as_py()

    def cancel(self) -> None:
        self._client.cancelled.set()
        duck = self._duck
        if duck is not None:
            duck.interrupt()

    def close(self) -> None:
        with self._lock:
            self._client.close()
            if self._duck is not None:
                self._duck.close()
                self._duck = None
            self._tables.clear()

    # -- internals ----------------------------------------------------------------------------

    def _selected(self, request: ReadRequest, *, upto: bool) -> pa.Table:
        """The stream's rows inside the request's cursor range (all of them without a cursor)."""
        try:
            table = self._table(self._find(request.stream))
        except Cancelled:
            raise SourceError(f"reading {request.stream} was cancelled") from None
        column = request.cursor_column
        if not column:
            return table
        if column not in table.column_names:
            raise InvalidInput(f"cursor column {column!r} is not a column of {request.stream}")
        values_ = table[column]
        mask = pc.is_valid(values_)
        if request.cursor_after is not None:
            mask = pc.and_(mask, pc.greater(values_, _scalar(request.cursor_after, values_.type, column)))
        if upto and request.cursor_upto is not None:
            mask = pc.and_(mask, pc.less_equal(values_, _scalar(request.cursor_upto, values_.type, column)))
        return table.filter(mask)

    def _streams(self) -> list[_Stream]:
        if self.config.auth == "public":
            return [_Stream(s.name, "", s.gid) for s in self.config.sheets]
        if self.config.ranges:
            return [_Stream(r.name, r.range) for r in self.config.ranges]
        return [_Stream(str(s["properties"]["title"]), quoted(str(s["properties"]["title"]))) for s in self._sheets()]

    def _find(self, name: str) -> _Stream:
        streams = self._streams()
        found = next((s for s in streams if s.name == name), None)
        if found is None:
            names = ", ".join(s.name for s in streams)
            raise InvalidInput(f"the spreadsheet has no stream {name!r}; its streams: {names}")
        return found

    def _sheets(self) -> list[dict[str, Any]]:
        sheets: list[dict[str, Any]] = self._metadata().get("sheets") or []
        return sheets

    def _metadata(self) -> dict[str, Any]:
        with self._lock:
            if self._meta is None:
                body, _ = self._client.get_json(self._url(""), {"fields": _META})
                if not isinstance(body, dict):
                    raise SourceError("the Sheets API answered something that is not a spreadsheet", problem="json")
                self._meta = body
            return self._meta

    def _zone(self) -> ZoneInfo:
        name = str((self._metadata().get("properties") or {}).get("timeZone") or "UTC")
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")

    def _url(self, tail: str) -> str:
        return f"{self.urls.api.rstrip('/')}/v4/spreadsheets/{self.config.spreadsheet_id}{tail}"

    def _sample_rows(self) -> int:
        return self.config.sample_rows + 20  # room for title rows above the header

    def _batch_values(self, ranges: list[str]) -> list[list[list[Any]]]:
        params: dict[str, Any] = {**_VALUES, "ranges": ranges}
        body, _ = self._client.get_json(self._url("/values:batchGet"), params)
        found = body.get("valueRanges") if isinstance(body, dict) else None
        if not isinstance(found, list) or len(found) != len(ranges):
            raise SourceError("the Sheets API answered values.batchGet without its valueRanges", problem="json")
        return [list(r.get("values") or []) for r in found]

    def _formats(self, stream: _Stream) -> list[list[str | None]]:
        """The number format type of each cell of the stream's first rows."""
        params = {"ranges": head(stream.range, self._sample_rows()), "includeGridData": "true", "fields": _FORMATS}
        body, _ = self._client.get_json(self._url(""), params)
        try:
            data = body["sheets"][0]["data"][0]
        except (KeyError, IndexError, TypeError):
            return []
        grid: list[list[str | None]] = []
        for row in data.get("rowData") or []:
            cells = row.get("values") or []
            grid.append([((c.get("effectiveFormat") or {}).get("numberFormat") or {}).get("type") for c in cells])
        return grid

    def _info_from_sample(self, stream: _Stream, rows: list[list[Any]]) -> StreamInfo:
        names, kinds = self._columns(rows, self._formats(stream) if rows else [])
        columns = [SourceColumn(n, k) for n, k in zip(names, kinds, strict=True)]
        return StreamInfo(stream.name, "sheet", columns, cursor_candidates=_cursor_candidates(names, kinds))

    def _info(self, stream: _Stream, table: pa.Table) -> StreamInfo:
        columns = [SourceColumn(f.name, str(f.type)) for f in table.schema]
        temporal = [f.name for f in table.schema if pa.types.is_temporal(f.type)]
        return StreamInfo(stream.name, "sheet", columns, row_estimate=table.num_rows, cursor_candidates=temporal)

    def _columns(self, rows: list[list[Any]], formats: list[list[str | None]]) -> tuple[list[str], list[str]]:
        index = values.header_index(rows, self.config.header_row)
        width = max((len(r) for r in rows), default=0)
        names = values.column_names(rows[index] if index is not None else None, width)
        start = 0 if index is None else index + 1
        data = rows[start:]
        kinds = []
        for j in range(width):
            column = [r[j] if j < len(r) else None for r in data]
            formats_j = Counter(
                f[j] for f in formats[start:] if j < len(f) and f[j] is not None and f[j] not in ("TEXT",)
            )
            kinds.append(values.column_kind(column, formats_j.most_common(1)[0][0] if formats_j else None))
        return names, kinds

    def _table(self, stream: _Stream) -> pa.Table:
        with self._lock:
            known = self._tables.get(stream.name)
            if known is not None:
                return known
            table = self._read_public(stream) if self.config.auth == "public" else self._read_api(stream)
            self._tables[stream.name] = table
            return table

    def _read_api(self, stream: _Stream) -> pa.Table:
        body, _ = self._client.get_json(self._url(f"/values/{quote(stream.range, safe='')}"), dict(_VALUES))
        rows: list[list[Any]] = list(body.get("values") or []) if isinstance(body, dict) else []
        names, kinds = self._columns(rows, self._formats(stream) if rows else [])
        index = values.header_index(rows, self.config.header_row)
        data = rows[0 if index is None else index + 1 :]
        while data and not any(v not in (None, "") for v in data[-1]):
            data.pop()
        zone = self._zone()
        arrays, fields = [], []
        for j, (name, kind) in enumerate(zip(names, kinds, strict=True)):
            column = [r[j] if j < len(r) else None for r in data]
            # types come from every row: a later row may widen what the sample showed
            if kind not in values.TEMPORAL or not values.numbers_only(column):
                kind = values.column_kind(column, None)
            try:
                arrays.append(values.to_arrow(column, kind, zone))
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, ValueError):
                arrays.append(values.to_arrow(column, "string", zone))
            fields.append(pa.field(name, arrays[-1].type))
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields)) if fields else pa.table({})

    def _read_public(self, stream: _Stream) -> pa.Table:
        path = self._export(stream.gid)
        try:
            header = self.config.header_row
            options = "auto_detect=true, all_varchar=false"
            if header == 0:
                options += ", header=false"
            elif header is not None:
                options += f", header=true, skip={header - 1}"
            con = self._duckdb()
            source = f"read_csv({lit(str(path))}, {options})"
            described = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
            parts = []
            for (name, duck_type, *_), renamed in zip(
                described, unique_names([str(d[0]) for d in described]), strict=True
            ):
                target = storable_cast(str(duck_type))
                quoted_name = '"' + str(name).replace('"', '""') + '"'
                value = f"CAST({quoted_name} AS {target})" if target else quoted_name
                parts.append(f"{value} AS {ident(renamed)}")
            return con.execute(f"SELECT {', '.join(parts)} FROM {source}").to_arrow_table()
        except duckdb.Error:  # its message names the spooled file: a server path
            raise SourceError(
                f"the CSV export of sheet {stream.name} cannot be read as CSV; set header_row or use a service account"
            ) from None
        finally:
            path.unlink(missing_ok=True)

    def _export(self, gid: int) -> Path:
        """The CSV export of one sheet, spooled to a temporary file."""
        url = f"{self.urls.docs.rstrip('/')}/spreadsheets/d/{self.config.spreadsheet_id}/export"
        response = self._client.send("GET", url, params={"format": "csv", "gid": gid})
        if "text/html" in response.headers.get("content-type", ""):
            raise SourceError(
                "the spreadsheet is not public: share it as 'anyone with the link can view' (or publish it to the "
                "web), or connect it with a service account",
                problem="permission",
            )
        with tempfile.NamedTemporaryFile("wb", prefix="tsunami-sheet-", suffix=".csv", delete=False) as out:
            out.write(response.content)
        return Path(out.name)

    def _duckdb(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._duck is None:
                con = duckdb.connect(":memory:")
                con.execute("SET TimeZone = 'UTC'")
                con.execute("SET autoinstall_known_extensions = false")
                self._duck = con
            return self._duck


def _cursor_candidates(names: list[str], kinds: list[str]) -> list[str]:
    return [n for n, k in zip(names, kinds, strict=True) if k in ("timestamp", "date")]


def _scalar(value: Any, arrow_type: pa.DataType, column: str) -> pa.Scalar:
    try:
        try:
            return pa.scalar(value, type=arrow_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            return pa.scalar(value).cast(arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError):
        raise InvalidInput(
            f"the cursor value {value!r} does not compare with column {column!r} ({arrow_type})"
        ) from None


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
