"""From a grid of cell values to typed columns: header row detection and types.

The Sheets API is asked for unformatted values (``valueRenderOption=UNFORMATTED_VALUE``) with dates
and times as serial numbers (``dateTimeRenderOption=SERIAL_NUMBER``: days since 1899-12-30, the
fraction being the time of day), so a cell is a JSON number, string or boolean. Which numbers are
dates comes from the cells' number formats (``DATE``, ``DATE_TIME``, ``TIME``), sampled separately.

A column's type, over its non-empty cells: all booleans -> ``boolean``; all numbers -> ``date``,
``timestamp`` or ``time`` by the column's number format, else ``bigint`` when every one is a whole
number, else ``double``; anything mixed or text -> ``string`` (numbers written as Sheets shows
them unformatted). Times of day land as ``HH:MM:SS`` text (Delta has no time type). Date-times are
the spreadsheet's wall-clock time in its time zone, landed as UTC.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa

from servicetsunami.connectors.files.reader import unique_names

EPOCH = dt.datetime(1899, 12, 30)
_DAY_MS = 86_400_000
_HEADER_SCAN = 20  # rows looked at for the header
_ARROW: dict[str, pa.DataType] = {
    "boolean": pa.bool_(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", "UTC"),
    "time": pa.string(),  # Delta has no TIME type: HH:MM:SS[.fff] text, as other sources land it
    "string": pa.string(),
}

Row = Sequence[Any]
TEMPORAL = ("date", "timestamp", "time")


def header_index(rows: Sequence[Row], header_row: int | None) -> int | None:
    """The index of the header row in ``rows`` (None: no header). ``header_row`` is the setting:
    1-based, 0 for none, None to detect the first row of text cells (at least half as wide as the
    widest of the scanned rows) that is followed by a row with a cell that is not text."""
    if header_row is not None:
        return header_row - 1 if header_row >= 1 else None
    scanned = rows[:_HEADER_SCAN]
    widest = max((_filled(row) for row in scanned), default=0)
    first_text: int | None = None  # a text-only sheet: its first wide text row
    for index, row in enumerate(scanned):
        filled = [v for v in row if not _empty(v)]
        if not filled:
            continue
        if not all(isinstance(v, str) for v in filled):
            break  # data started
        if len(filled) * 2 < widest:
            continue  # a title above the table
        following = next((r for r in rows[index + 1 :] if _filled(r)), None)
        if following is None or any(not isinstance(v, str) for v in following if not _empty(v)):
            return index
        if first_text is None:
            first_text = index
    return first_text


def column_names(header: Row | None, width: int) -> list[str]:
    """Names from the header row, made snake_case and unique as for uploaded files (``Paid at`` ->
    ``paid_at``, a blank -> ``column_N``, a repeat -> ``name_2``); without a header, the column
    letters (``a``, ``b``, ...)."""
    if header is None:
        return unique_names([letters(index) for index in range(width)])
    cells = [header[index] if index < len(header) else None for index in range(width)]
    return unique_names(["" if _empty(value) else _text(value).strip() for value in cells])


def letters(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    out = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        out = chr(65 + rest) + out
    return out


def column_kind(values: Sequence[Any], number_format: str | None) -> str:
    filled = [v for v in values if not _empty(v)]
    if not filled:
        return "string"
    if all(isinstance(v, bool) for v in filled):
        return "boolean"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in filled):
        if number_format == "DATE":
            return "date"
        if number_format == "DATE_TIME":
            return "timestamp"
        if number_format == "TIME":
            return "time"
        if all(float(v).is_integer() and abs(v) < 2**53 for v in filled):
            return "bigint"
        return "double"
    return "string"


def numbers_only(values: Sequence[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values if not _empty(v))


def arrow_type(kind: str) -> pa.DataType:
    return _ARROW[kind]


def to_arrow(values: Sequence[Any], kind: str, zone: ZoneInfo) -> pa.Array:
    """One column's cells as an Arrow array of ``kind``; empty cells are NULL."""
    converted = [None if _empty(v) else _convert(v, kind, zone) for v in values]
    return pa.array(converted, type=_ARROW[kind])


def _convert(value: Any, kind: str, zone: ZoneInfo) -> Any:
    if kind == "string":
        return _text(value)
    if kind == "boolean":
        return bool(value)
    if kind == "bigint":
        return int(value)
    if kind == "double":
        return float(value)
    millis = round(float(value) * _DAY_MS)  # serial days; Sheets keeps times to the millisecond
    moment = EPOCH + dt.timedelta(milliseconds=millis)
    if kind == "date":
        return moment.date()
    if kind == "time":
        return (EPOCH + dt.timedelta(milliseconds=millis % _DAY_MS)).time().isoformat()
    return moment.replace(tzinfo=zone).astimezone(dt.UTC)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and math.isfinite(value):
        return str(int(value))
    return str(value)


def _empty(value: Any) -> bool:
    return value is None or value == ""


def _filled(row: Row) -> int:
    return sum(1 for v in row if not _empty(v))
