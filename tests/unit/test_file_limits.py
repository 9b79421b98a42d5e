"""Structural limits of untrusted files are checked with a bounded scan, before any parser runs."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from servicetsunami.connectors.files.limits import StructureLimits, check_structure
from servicetsunami.errors import BadFile, FileLimitExceeded

LIMITS = StructureLimits(max_json_depth=8, max_csv_columns=10, max_line_bytes=1024, max_xlsx_sheets=2)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def refused(path: Path, fmt: str, limits: StructureLimits = LIMITS) -> FileLimitExceeded:
    with pytest.raises(FileLimitExceeded) as info:
        check_structure(path, fmt, path.name, limits, encoding="utf-8")
    assert info.value.code == "file_limit_exceeded"
    return info.value


@pytest.mark.parametrize(
    "data",
    [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 5000 + b"1" + b"}" * 5000, b'[{"a": [[[[[[[[1]]]]]]]]}]'],
    ids=["arrays", "objects", "mixed"],
)
def test_json_nested_past_the_depth_limit_is_refused_naming_the_setting(tmp_path: Path, data: bytes) -> None:
    error = refused(write(tmp_path, "deep.json", data), "json")
    assert error.details["limit"] == "ingest.max_json_depth"
    assert error.details["maximum"] == 8


def test_brackets_inside_strings_do_not_count_as_nesting(tmp_path: Path) -> None:
    text = b'[{"s": "' + b"[{" * 1000 + b'\\" ]]", "t": "x"}]\n'
    check_structure(write(tmp_path, "ok.json", text), "json", "ok.json", LIMITS, encoding="utf-8")


def test_depth_is_counted_across_chunks_and_ndjson_lines(tmp_path: Path) -> None:
    line = b'{"a": {"b": [1, 2, {"c": "' + b"]" * 50 + b'"}]}}\n'
    path = write(tmp_path, "ok.ndjson", line * 200_000)  # several 4 MiB chunks, strings cut across them
    check_structure(path, "ndjson", path.name, LIMITS, encoding="utf-8")
    deep = write(tmp_path, "deep.ndjson", line * 200_000 + b"[" * 9 + b"]" * 9 + b"\n")
    assert refused(deep, "ndjson").details["value"] == 9


def test_a_csv_wider_than_the_column_limit_is_refused(tmp_path: Path) -> None:
    wide = write(tmp_path, "wide.csv", b",".join(b"c%d" % i for i in range(11)) + b"\n" + b"1," * 10 + b"1\n")
    assert refused(wide, "csv").details == {"limit": "ingest.max_csv_columns", "value": 11, "maximum": 10}
    semicolons = write(tmp_path, "wide2.csv", b";".join(b"c%d" % i for i in range(20)) + b"\n")
    assert refused(semicolons, "csv").details["value"] == 20
    check_structure(write(tmp_path, "ok.csv", b"a,b,c\n1,2,3\n"), "csv", "ok.csv", LIMITS, encoding="utf-8")


def test_a_csv_whose_first_line_is_longer_than_the_line_limit_is_refused(tmp_path: Path) -> None:
    long = write(tmp_path, "long.csv", b"x" * 2000 + b"\n1\n")
    assert refused(long, "csv").details["limit"] == "ingest.max_line_bytes"
    no_breaks = write(tmp_path, "blob.csv", b"y" * 5000)
    assert refused(no_breaks, "csv").details["limit"] == "ingest.max_line_bytes"


def workbook(sheets: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", b"<Types/>")
        for name, xml in sheets.items():
            zf.writestr(f"xl/worksheets/{name}.xml", xml)
    return buf.getvalue()


def test_a_zip_bomb_workbook_is_refused_by_its_compression_ratio(tmp_path: Path) -> None:
    bomb = write(tmp_path, "bomb.xlsx", workbook({"sheet1": b"<worksheet>" + b" " * (64 * 1024 * 1024)}))
    assert bomb.stat().st_size < 200_000
    assert refused(bomb, "xlsx").details["limit"] == "ingest.max_xlsx_compression_ratio"


def test_a_workbook_past_its_unpacked_size_sheets_or_cells_is_refused(tmp_path: Path) -> None:
    row = b"<row>" + b"".join(b'<c r="A%d"><v>%d</v></c>' % (i, i) for i in range(100)) + b"</row>"
    big = write(tmp_path, "big.xlsx", workbook({"sheet1": row * 2000}))
    small_budget = StructureLimits(max_xlsx_uncompressed_bytes=1024 * 1024, max_xlsx_compression_ratio=1e9)
    assert refused(big, "xlsx", small_budget).details["limit"] == "ingest.max_xlsx_uncompressed_bytes"
    few_cells = StructureLimits(max_xlsx_cells=150_000, max_xlsx_compression_ratio=1e9)
    assert refused(big, "xlsx", few_cells).details["limit"] == "ingest.max_xlsx_cells"
    many = write(tmp_path, "many.xlsx", workbook({f"sheet{i}": b"<worksheet/>" for i in range(3)}))
    assert refused(many, "xlsx").details == {"limit": "ingest.max_xlsx_sheets", "value": 3, "maximum": 2}


def test_a_workbook_that_is_not_a_zip_is_a_bad_file(tmp_path: Path) -> None:
    with pytest.raises(BadFile) as info:
        check_structure(write(tmp_path, "x.xlsx", b"not a zip"), "xlsx", "x.xlsx", LIMITS, encoding="utf-8")
    assert info.value.code == "bad_file"
