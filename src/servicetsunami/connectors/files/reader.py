"""Reading files as Arrow streams: CSV/TSV, Excel, Parquet, JSON and NDJSON.

DuckDB does the parsing: its CSV sniffer detects delimiter, quoting, header and types, its readers
stream (memory does not grow with file size) and its errors name the line. Each open file gets its
own short-lived DuckDB connection that may read only that file, with extension autoloading off; the
Excel reader is DuckDB's ``excel`` extension, loaded from its pip package (never downloaded).

Column names become snake_case (the original kept as the column comment), and types Delta cannot
store (TIME, unsigned integers, HUGEINT, INTERVAL, UNION) are cast to ones it can.
"""

from __future__ import annotations

import contextlib
import csv
import pathlib
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from servicetsunami.connectors.duckdb_support import load_packaged_extension, sql_literal, storable_cast
from servicetsunami.errors import BadFile, FileLimitExceeded, InvalidInput

FORMATS = ("csv", "tsv", "xlsx", "parquet", "json", "ndjson")
SAMPLED_FORMATS = ("csv", "tsv", "xlsx", "json", "ndjson")  # types inferred from a sample of rows
_EXTENSIONS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
}
_DELIMITERS = ",;\t|"  # what a file read as one column may have meant to split on
_ENCODINGS = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "utf-16": "utf-16",
    "utf16": "utf-16",
    "latin-1": "latin-1",
    "latin1": "latin-1",
    "iso-8859-1": "latin-1",
}


@dataclass(frozen=True, slots=True)
class FileOptions:
    """How to read a file. ``None`` everywhere means "detect it"."""

    format: str | None = None
    delimiter: str | None = None
    header: bool | None = None
    encoding: str | None = None
    quote: str | None = None
    sheet: str | None = None  # Excel: a sheet name; None or "*" means every sheet


def detect_format(file_name: str, options: FileOptions) -> str:
    if options.format:
        fmt = options.format.lower().lstrip(".")
        fmt = {"excel": "xlsx", "jsonl": "ndjson", "txt": "csv"}.get(fmt, fmt)
        if fmt not in FORMATS:
            raise InvalidInput(f"format {options.format!r} is not supported; use one of {', '.join(FORMATS)}")
        return fmt
    suffix = pathlib.PurePath(file_name).suffix.lower()
    if suffix == ".xls":
        raise BadFile("legacy .xls files are not supported; save the workbook as .xlsx or CSV")
    if suffix not in _EXTENSIONS:
        raise InvalidInput(
            f"cannot tell the format of {file_name!r} from its extension; pass format= one of {', '.join(FORMATS)}"
        )
    return _EXTENSIONS[suffix]


def snake_case(name: str) -> str:
    """``"Order ID"`` -> ``order_id``; ``"customerName"`` -> ``customer_name``; ``"1st"`` -> ``c_1st``."""
    text = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode()
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
    text = re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()
    if not text:
        return ""
    return text if text[0].isalpha() else f"c_{text}"


def unique_names(originals: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for i, original in enumerate(originals, start=1):
        base = (snake_case(original) or f"column_{i}")[:120]
        name, n = base, 2
        while name in seen or name.startswith("_"):
            name, n = f"{base}_{n}", n + 1
        seen.add(name)
        out.append(name)
    return out


class FileReader:
    """One file, opened for reading as Arrow batches. Use as a context manager."""

    def __init__(
        self,
        path: pathlib.Path,
        *,
        file_name: str,
        options: FileOptions,
        batch_rows: int,
        output_dir: pathlib.Path | None = None,
        full_sample: bool = False,
        memory_limit_bytes: int | None = None,
        threads: int | None = None,
        max_line_bytes: int | None = None,
    ) -> None:
        """``full_sample``: infer types from every row, not a sample (slower; for files whose
        types change late). ``output_dir``: where :meth:`copy_to_parquet` may write.
        ``memory_limit_bytes`` and ``threads``: DuckDB's for this file (None: its defaults);
        ``max_line_bytes``: the longest CSV line accepted (a longer one is :class:`FileLimitExceeded`)."""
        self.path = path
        self.output_dir = output_dir
        self.file_name = file_name
        self.options = options
        self.format = detect_format(file_name, options)
        self.batch_rows = batch_rows
        self._con = duckdb.connect(":memory:")
        self._con.execute("SET autoinstall_known_extensions = false")
        self._con.execute("SET autoload_known_extensions = false")
        if memory_limit_bytes is not None:
            self._con.execute(f"SET memory_limit = '{int(memory_limit_bytes) // (1024 * 1024)}MB'")
        if threads:
            self._con.execute(f"SET threads = {int(threads)}")
        self.max_line_bytes = max_line_bytes
        if self.format == "xlsx":
            load_packaged_extension(self._con, "excel")
        allowed = [_lit(str(path))] + ([_lit(str(output_dir))] if output_dir is not None else [])
        self._con.execute(f"SET allowed_paths = [{', '.join(allowed)}]")
        if output_dir is not None:
            self._con.execute(f"SET allowed_directories = [{_lit(str(output_dir) + '/')}]")
        self._con.execute("SET enable_external_access = false")
        self._con.execute("SET lock_configuration = true")
        self._full_sample = full_sample

    def __enter__(self) -> FileReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._con.close()

    def _bad(self, exc: BaseException) -> BadFile | FileLimitExceeded:
        """DuckDB's error as :class:`BadFile`, or :class:`FileLimitExceeded` for a line past the limit."""
        if self.max_line_bytes is not None and "Maximum line size of" in str(exc):
            found = re.search(r"Actual Size:\s*(\d+)", str(exc))
            return FileLimitExceeded(
                f"{self.file_name} has a line longer than {self.max_line_bytes} bytes, the limit (setting "
                "ingest.max_line_bytes): check the file's quoting and line breaks, or raise the limit",
                limit="ingest.max_line_bytes",
                maximum=self.max_line_bytes,
                value=int(found.group(1)) if found else None,
            )
        return BadFile(self._clean(exc))

    def _clean(self, exc: BaseException, *, prefix: bool = True) -> str:
        """The error for the caller: this file by the name they gave it, never a server path."""
        folders = [self.output_dir] if self.output_dir is not None else []
        text = clean_error(exc, self.file_name, path=self.path, folders=folders)
        if "invalid unicode" in text.lower() and not self.options.encoding:
            text += NOT_UTF8_HINT
        return text if prefix else text.removeprefix(f"{self.file_name}: ")

    def sheets(self) -> list[str]:
        if self.format != "xlsx":
            return []
        from openpyxl import load_workbook

        try:
            wb = load_workbook(self.path, read_only=True)
        except Exception as exc:  # openpyxl raises zipfile/KeyError/ValueError for broken files
            raise BadFile(
                f"{self.file_name} is not a readable .xlsx workbook: {self._clean(exc, prefix=False)}"
            ) from exc
        try:
            names = list(wb.sheetnames)
        finally:
            wb.close()
        wanted = self.options.sheet
        if wanted and wanted != "*":
            if wanted not in names:
                raise BadFile(f"sheet {wanted!r} not found; the workbook has: {', '.join(names)}")
            return [wanted]
        return names

    def open(self, *, extra: dict[str, Any]) -> tuple[pa.RecordBatchReader, list[tuple[str, str]]]:
        """Stream the file's rows with snake_case columns plus ``extra`` constant columns.

        Returns the reader and ``(column, original name)`` pairs.
        """
        body, columns = self._plan()
        consts = ", ".join(f"? AS {_ident(k)}" for k in extra)
        sql = f"SELECT *, {consts} FROM ({body})" if extra else body
        try:
            reader = self._con.execute(sql, list(extra.values())).to_arrow_reader(self.batch_rows)
        except duckdb.Error as exc:
            raise self._bad(exc) from exc
        return with_comments(reader, {name: original for name, original in columns}), columns

    def copy_to_parquet(self, *, extra: dict[str, Any]) -> list[tuple[str, str]]:
        """Write the rows (as :meth:`open` streams them) as Parquet files into ``output_dir``,
        with DuckDB's parallel writer. Returns ``(column, original name)`` pairs."""
        if self.output_dir is None:
            raise ValueError("this reader was opened without an output_dir")
        body, columns = self._plan()
        consts = ", ".join(f"{sql_literal(v)} AS {_ident(k)}" for k, v in extra.items())
        sql = f"SELECT *, {consts} FROM ({body})" if extra else body
        try:
            self._con.execute(
                f"COPY ({sql}) TO {_lit(str(self.output_dir))} "
                "(FORMAT parquet, COMPRESSION snappy, FILE_SIZE_BYTES '256MB', OVERWRITE_OR_IGNORE true)"
            )
        except duckdb.Error as exc:
            raise self._bad(exc) from exc
        return columns

    def _plan(self) -> tuple[str, list[tuple[str, str]]]:
        """The SELECT over the file (snake_case names, storable types) and the column pairs."""
        if self.path.stat().st_size == 0:
            raise BadFile(f"{self.file_name} is empty")
        sources = self._sources()
        described = [self._describe(src) for src in sources]
        originals: list[str] = []
        for cols in described:
            originals += [c for c, _ in cols if c not in originals]
        names = unique_names(originals)
        rename = dict(zip(originals, names, strict=True))
        types = {c: t for cols in described for c, t in cols}
        selects = []
        whole: dict[str, str | None] = {}  # Excel columns of whole numbers, decided across all sheets
        for src, cols in zip(sources, described, strict=True):
            present = {c for c, _ in cols}
            parts = []
            for original in originals:
                expr = _ident(original) if original in present else "NULL"
                target = storable_cast(types[original])
                if target is None and types[original].upper() == "DOUBLE" and self.format == "xlsx":
                    target = whole.setdefault(original, self._integral_everywhere(sources, described, original))
                if target:
                    expr = f"CAST({expr} AS {target})"
                parts.append(f"{expr} AS {_ident(rename[original])}")
            if len(sources) > 1:
                parts.append(f"{_lit(src[1])} AS _sheet")
            selects.append(f"SELECT {', '.join(parts)} FROM {src[0]}")
        body = " UNION ALL ".join(selects)
        self._check_not_empty(body)
        return body, [(rename[o], o) for o in originals]

    # -- internals ----------------------------------------------------------------------------

    def _sources(self) -> list[tuple[str, str]]:
        p = _lit(str(self.path))
        o = self.options
        sample = ", sample_size=-1" if self._full_sample else ""
        if self.format in ("csv", "tsv"):
            args = [p, "strict_mode=true", "null_padding=false"]
            if self.max_line_bytes is not None:
                args.append(f"max_line_size={int(self.max_line_bytes)}")
            delim = o.delimiter or ("\t" if self.format == "tsv" else None)
            if delim:
                args.append(f"delim={_lit(delim)}")
            if o.header is not None:
                args.append(f"header={'true' if o.header else 'false'}")
            if o.quote:
                args.append(f"quote={_lit(o.quote)}")
            if o.encoding:
                enc = _ENCODINGS.get(o.encoding.lower())
                if enc is None:
                    raise InvalidInput(f"encoding {o.encoding!r} is not supported; use utf-8, utf-16 or latin-1")
                args.append(f"encoding={_lit(enc)}")
            self._check_csv_shape(args)
            return [(f"read_csv({', '.join(args)}{sample})", "")]
        if self.format == "parquet":
            return [(f"read_parquet({p})", "")]
        if self.format in ("json", "ndjson"):
            fmt = "newline_delimited" if self.format == "ndjson" else "auto"
            return [(f"read_json({p}, format={_lit(fmt)}{sample})", "")]
        header = "" if self.options.header is None else f", header={'true' if self.options.header else 'false'}"
        every = ", all_varchar=true" if self._full_sample else ""
        return [(f"read_xlsx({p}, sheet={_lit(s)}{header}{every})", s) for s in self.sheets()]

    def _check_csv_shape(self, args: list[str]) -> None:
        """DuckDB's sniffer treats leading lines that disagree with the rest as a preamble and skips
        them silently, and reads a file whose lines agree on no delimiter as one column of whole
        lines; either would lose or mangle rows of a ragged file. When it wants to skip lines, finds
        one column where the first line splits, or cannot find a dialect at all, find the first line
        whose field count differs and name it."""
        try:
            row = self._con.execute(
                f"SELECT Delimiter, Quote, SkipRows, len(Columns) FROM sniff_csv({', '.join(args[:1] + args[3:])})"
            ).fetchone()
        except duckdb.Error as exc:
            self._raise_ragged(None, None)
            raise self._bad(exc) from exc
        if not row:
            return
        delimiter, quote, skipped, width = row
        quote = None if quote in ("(empty)", "") else quote
        if skipped:
            self._raise_ragged(delimiter, quote)
        elif width == 1 and not self.options.delimiter and self.format == "csv":
            first, quotechar = self._first_line(), self.options.quote or quote or '"'
            for candidate in _DELIMITERS:
                with contextlib.suppress(csv.Error):
                    if len(next(csv.reader([first], delimiter=candidate, quotechar=quotechar), [])) > 1:
                        self._raise_ragged(candidate, quote)

    def _first_line(self) -> str:
        with open(self.path, newline="", encoding=self._encoding(), errors="replace") as fh:
            return fh.readline(64 * 1024).rstrip("\r\n")

    def _encoding(self) -> str:
        return {"utf-16": "utf-16", "latin-1": "latin-1"}.get(
            _ENCODINGS.get((self.options.encoding or "utf-8").lower(), "utf-8"), "utf-8"
        )

    def _raise_ragged(self, delimiter: str | None, quote: str | None) -> None:
        with open(self.path, newline="", encoding=self._encoding(), errors="replace") as fh:
            sample = fh.read(64 * 1024)
            fh.seek(0)
            delim = self.options.delimiter or delimiter
            if not delim:
                try:
                    delim = csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
                except csv.Error:
                    return
            reader = csv.reader(fh, delimiter=delim, quotechar=self.options.quote or quote or '"')
            expected = None
            try:
                for row in reader:
                    if expected is None:
                        expected = len(row)
                    elif row and len(row) != expected:
                        raise BadFile(
                            f"{self.file_name}: line {reader.line_num} has {len(row)} fields but the first "
                            f"line has {expected}; fix the row or quote the values that contain {delim!r}",
                            line=reader.line_num,
                        )
            except csv.Error:  # not CSV as Python reads it (a NUL byte, a huge field): DuckDB will say
                return

    def _describe(self, src: tuple[str, str]) -> list[tuple[str, str]]:
        try:
            rows = self._con.execute(f"DESCRIBE SELECT * FROM {src[0]}").fetchall()
        except duckdb.Error as exc:
            raise self._bad(exc) from exc
        if not rows:
            raise BadFile(f"{self.file_name} has no columns")
        return [(str(r[0]), str(r[1])) for r in rows]

    def _integral_everywhere(
        self, sources: list[tuple[str, str]], described: list[list[tuple[str, str]]], column: str
    ) -> str | None:
        """Excel stores every number as a double; a column of whole numbers (in every sheet that
        has it) becomes BIGINT."""
        c = _ident(column)
        for src, cols in zip(sources, described, strict=True):
            if not any(name == column for name, _ in cols):
                continue
            row = self._con.execute(
                f"SELECT bool_and({c} = trunc({c}) AND abs({c}) < 9e15) FROM {src[0]} WHERE {c} IS NOT NULL"
            ).fetchone()
            if row is not None and row[0] is False:
                return None
        return "BIGINT"

    def _check_not_empty(self, body: str) -> None:
        try:
            row = self._con.execute(f"SELECT 1 FROM ({body}) LIMIT 1").fetchone()
        except duckdb.Error as exc:
            raise self._bad(exc) from exc
        if row is None:
            raise BadFile(f"{self.file_name} has no data rows")


def with_comments(reader: pa.RecordBatchReader, comments: dict[str, str]) -> pa.RecordBatchReader:
    fields = []
    for f in reader.schema:
        t = pa.large_string() if pa.types.is_string_view(f.type) else f.type
        meta = {"comment": comments[f.name]} if f.name in comments else None
        fields.append(pa.field(f.name, t, f.nullable, metadata=meta))
    schema = pa.schema(fields)

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            yield pa.RecordBatch.from_arrays(
                [col.cast(f.type) if col.type != f.type else col for col, f in zip(batch.columns, schema, strict=True)],
                schema=schema,
            )

    return pa.RecordBatchReader.from_batches(schema, batches())


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


NOT_UTF8_HINT = (
    " (the file is not UTF-8; if it comes from Excel or an older Windows program, send it again with "
    "encoding=latin-1, or encoding=utf-16)"
)


def _clean(exc: BaseException, file_name: str) -> str:
    """DuckDB's message without its advice about DuckDB options, which our users cannot set."""
    text = str(exc)
    for cut in ("\n\nPossible", "\nPossible", "\n\nLINE ", "\n* "):
        text = text.split(cut)[0]
    text = re.sub(r"^[A-Za-z ]*Error: ", "", text.strip())
    text = text.replace("This type was auto-detected from the CSV file.", "").strip()
    text = re.sub(r"\nOriginal Line: [^\n]*", "", text)
    text = re.sub(r"\s*\n\s*", "; ", text)
    return f"{file_name}: {text}"[:800]


def clean_error(
    exc: BaseException, file_name: str, *, path: pathlib.Path | None = None, folders: Sequence[pathlib.Path] = ()
) -> str:
    """The reader's error as the caller may see it: ``path`` (the file as the server stores it)
    becomes ``file_name``, a path under ``folders`` or the file's own folder becomes "a staging
    file", and any other absolute path is cut to its last part."""
    text = _clean(exc, file_name)
    if path is not None:
        for shown in {str(path.resolve()), str(path)}:
            text = text.replace(shown, file_name)
        folders = [*folders, path.parent]
    for folder in folders:
        for shown in {str(folder.resolve()), str(folder)}:
            text = re.sub(re.escape(shown.rstrip("/")) + r"/[^\s\"']*", "a staging file", text)
            text = text.replace(shown, "a staging folder")
    return _ABSOLUTE_PATH_RE.sub(lambda m: m.group(1) + pathlib.PurePath(m.group(2)).name, text)


# An absolute path of at least two parts, as it starts after a quote, a space or the message's start.
_ABSOLUTE_PATH_RE = re.compile(r"""(^|[\s"'(=:])(/(?:[^\s"'/]+/)+[^\s"'/;,)]+)""")
