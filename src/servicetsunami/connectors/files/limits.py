"""Structural limits of an untrusted file, checked before a parser sees it.

DuckDB's readers trust their input's shape: a JSON file nested 100,000 deep crashes ``read_json``
(SIGSEGV), one nested 5,000 deep keeps it busy for minutes at gigabytes of memory, a CSV 100,000
columns wide does the same to the sniffer, and a small .xlsx can expand to gigabytes. These checks
read the file with a bounded amount of work and memory (a streaming scan, never a full parse) and
refuse it with :class:`~servicetsunami.errors.FileLimitExceeded`, which names the limit, the value
found, and what to do instead.

- JSON and NDJSON: nesting depth (strings removed, brackets counted with Arrow's cumulative sum).
- CSV and TSV: the first line's length and its number of fields under any delimiter DuckDB could
  pick; DuckDB then enforces the line length on every line (``max_line_size``), and its strict mode
  refuses a later line with more fields than the first.
- xlsx: the number of sheets, each part's compression ratio, the total decompressed size (read, not
  taken from the zip directory, which can lie) and the number of cells.
"""

from __future__ import annotations

import codecs
import csv
import pathlib
import re
import zipfile
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from servicetsunami.errors import BadFile, FileLimitExceeded

_CHUNK = 4 * 1024 * 1024
_DELIMITERS = ",;\t|"
# Brackets become +1/-1 and quotes 0 (as signed bytes); everything else is deleted before the count.
_STRUCTURE = bytes.maketrans(b'[{]}"', b"\x01\x01\xff\xff\x00")
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_CELL_RE = re.compile(rb"<(?:\w+:)?c[\s>/]")
_SHEET_RE = re.compile(r"^xl/(?:worksheets|chartsheets|dialogsheets|macrosheets)/[^/]+\.xml$")


@dataclass(frozen=True, slots=True)
class StructureLimits:
    """The limits; :meth:`from_settings` reads them from ``ingest`` settings."""

    max_json_depth: int = 64
    max_csv_columns: int = 4096
    max_line_bytes: int = 1024 * 1024
    max_xlsx_sheets: int = 64
    max_xlsx_uncompressed_bytes: int = 512 * 1024 * 1024
    max_xlsx_compression_ratio: float = 100.0
    max_xlsx_cells: int = 20_000_000

    @classmethod
    def from_settings(cls, ingest: object) -> StructureLimits:
        return cls(**{name: getattr(ingest, name) for name in cls.__dataclass_fields__})


def check_structure(path: pathlib.Path, fmt: str, file_name: str, limits: StructureLimits, *, encoding: str) -> None:
    """Raise :class:`FileLimitExceeded` when the file passes one of ``limits``; return otherwise."""
    if fmt in ("json", "ndjson"):
        check_json_depth(path, file_name, limits.max_json_depth)
    elif fmt in ("csv", "tsv"):
        check_csv_shape(path, file_name, limits, encoding=encoding, tab=fmt == "tsv")
    elif fmt == "xlsx":
        check_xlsx(path, file_name, limits)


def check_json_depth(path: pathlib.Path, file_name: str, limit: int) -> None:
    """The deepest nesting of arrays and objects, counted outside strings, must be at most ``limit``.

    Byte operations only (C speed): escapes are dropped, everything but brackets and quotes is
    deleted, and the pieces between quotes alternate between outside and inside strings."""
    depth = 0  # open brackets before the current chunk
    in_string = False
    carry = b""  # a backslash that ended the last chunk escapes the first byte of the next
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            data = carry + chunk
            trailing = len(data) - len(data.rstrip(b"\\"))
            carry = b"\\" if trailing % 2 else b""
            if carry:
                data = data[:-1]
            kept = data.replace(b"\\\\", b"").replace(b'\\"', b"").translate(_STRUCTURE, _NOT_STRUCTURE)
            if not kept:
                continue
            steps, in_string = _outside_strings(kept, in_string)
            if len(steps) == 0:
                continue
            deepest = depth + int(pc.max(pc.cumulative_sum(steps)).as_py())
            if deepest > limit:
                raise FileLimitExceeded(
                    f"{file_name} nests arrays and objects {deepest} levels deep; the limit is {limit} "
                    "(setting ingest.max_json_depth): flatten the data, or raise the limit",
                    limit="ingest.max_json_depth",
                    value=deepest,
                    maximum=limit,
                )
            depth += int(pc.sum(steps).as_py())


def _outside_strings(kept: bytes, in_string: bool) -> tuple[pa.Array, bool]:
    """``kept`` holds brackets (+1/-1) and quotes (0): the brackets outside strings as int64 steps,
    and whether the chunk ends inside a string."""
    codes = pa.Array.from_buffers(pa.int8(), len(kept), [None, pa.py_buffer(kept)])
    quotes = pc.cast(pc.equal(codes, 0), pa.int64())
    opened = pc.cumulative_sum(quotes, start=1 if in_string else 0)
    outside = pc.and_(pc.equal(pc.bit_wise_and(opened, 1), 0), pc.not_equal(codes, 0))
    ends_inside = bool(int(opened[-1].as_py()) % 2)
    return pc.cast(pc.filter(codes, outside), pa.int64()), ends_inside


def check_csv_shape(
    path: pathlib.Path, file_name: str, limits: StructureLimits, *, encoding: str, tab: bool = False
) -> None:
    """The first line must be at most ``max_line_bytes`` long and split into at most
    ``max_csv_columns`` fields under every delimiter the reader could choose."""
    line = _first_line(path, limits.max_line_bytes)
    if line is None:
        raise FileLimitExceeded(
            f"{file_name}: the first line is longer than {limits.max_line_bytes} bytes, the limit (setting "
            "ingest.max_line_bytes); check the file is CSV with line breaks, or raise the limit",
            limit="ingest.max_line_bytes",
            maximum=limits.max_line_bytes,
            line=1,
        )
    text = codecs.decode(line, _python_codec(encoding), errors="replace")
    widest = 0
    for delim in "\t" if tab else _DELIMITERS:
        if delim not in text:
            continue
        try:
            fields = next(csv.reader([text], delimiter=delim), [])
        except csv.Error:
            fields = text.split(delim)
        widest = max(widest, len(fields))
    if widest > limits.max_csv_columns:
        raise FileLimitExceeded(
            f"{file_name} has {widest} columns; the limit is {limits.max_csv_columns} (setting "
            "ingest.max_csv_columns): split the file into narrower ones, or raise the limit",
            limit="ingest.max_csv_columns",
            value=widest,
            maximum=limits.max_csv_columns,
        )


def _first_line(path: pathlib.Path, limit: int) -> bytes | None:
    """The first line without its line break, or None when it is longer than ``limit`` bytes."""
    with open(path, "rb") as fh:
        head = fh.read(limit + 2)
    ends = [i for i in (head.find(b"\n"), head.find(b"\r")) if i >= 0]
    line = head[: min(ends)] if ends else head
    return line if len(line) <= limit else None


def _python_codec(encoding: str) -> str:
    return {"utf-16": "utf-16", "latin-1": "latin-1"}.get(encoding, "utf-8")


def check_xlsx(path: pathlib.Path, file_name: str, limits: StructureLimits) -> None:
    """Sheets, compression ratio, decompressed size and cells of a workbook, within ``limits``."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise BadFile(f"{file_name}: not a readable .xlsx workbook (not a zip archive)") from exc
    with archive:
        entries = archive.infolist()
        sheets = [e for e in entries if _SHEET_RE.match(e.filename)]
        if len(sheets) > limits.max_xlsx_sheets:
            raise FileLimitExceeded(
                f"{file_name} has {len(sheets)} sheets; the limit is {limits.max_xlsx_sheets} (setting "
                "ingest.max_xlsx_sheets): split the workbook, or raise the limit",
                limit="ingest.max_xlsx_sheets",
                value=len(sheets),
                maximum=limits.max_xlsx_sheets,
            )
        budget = limits.max_xlsx_uncompressed_bytes
        cells = 0
        for entry in entries:
            ratio = entry.file_size / max(entry.compress_size, 1)
            if entry.file_size > 1024 * 1024 and ratio > limits.max_xlsx_compression_ratio:
                raise _ratio_error(file_name, entry.file_size, entry.compress_size, limits)
            try:
                with archive.open(entry) as part:
                    tail = b""
                    read = 0
                    while block := part.read(_CHUNK):
                        read += len(block)
                        if read > budget:
                            raise _size_error(file_name, limits)
                        ratio = read / max(entry.compress_size, 1)
                        if read > 1024 * 1024 and ratio > limits.max_xlsx_compression_ratio:
                            raise _ratio_error(file_name, read, entry.compress_size, limits)
                        if entry in sheets:
                            cells += len(_CELL_RE.findall(tail + block))
                            tail = block[-16:]
                            if cells > limits.max_xlsx_cells:
                                raise _cells_error(file_name, cells, limits)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError) as exc:
                raise BadFile(f"{file_name}: not a readable .xlsx workbook (a damaged part)") from exc
            budget -= read


def _ratio_error(file_name: str, size: int, compressed: int, limits: StructureLimits) -> FileLimitExceeded:
    ratio = size / max(compressed, 1)
    return FileLimitExceeded(
        f"{file_name} expands {ratio:.0f} times when unpacked; the limit is {limits.max_xlsx_compression_ratio:g} "
        "(setting ingest.max_xlsx_compression_ratio): save the data as CSV, or raise the limit",
        limit="ingest.max_xlsx_compression_ratio",
        value=round(ratio, 1),
        maximum=limits.max_xlsx_compression_ratio,
    )


def _size_error(file_name: str, limits: StructureLimits) -> FileLimitExceeded:
    return FileLimitExceeded(
        f"{file_name} unpacks to more than {limits.max_xlsx_uncompressed_bytes} bytes, the limit (setting "
        "ingest.max_xlsx_uncompressed_bytes): save the data as CSV, or raise the limit",
        limit="ingest.max_xlsx_uncompressed_bytes",
        maximum=limits.max_xlsx_uncompressed_bytes,
    )


def _cells_error(file_name: str, cells: int, limits: StructureLimits) -> FileLimitExceeded:
    return FileLimitExceeded(
        f"{file_name} has more than {limits.max_xlsx_cells} cells, the limit (setting ingest.max_xlsx_cells): "
        "save the data as CSV, or raise the limit",
        limit="ingest.max_xlsx_cells",
        value=cells,
        maximum=limits.max_xlsx_cells,
    )
