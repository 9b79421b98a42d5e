"""Untrusted files over the real REST app: a file that would crash the parser, keep it busy or
expand without end costs one request, which is answered with an error naming the limit; the same
worker then ingests the next file, and nothing of the refused upload is left in the data tree."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from fastapi.testclient import TestClient

from servicetsunami.api.app import create_app
from servicetsunami.services.container import Services
from servicetsunami.settings import IngestSettings, Settings
from tests.helpers import make_principal

GOOD = b"id,name\n1,ann\n2,bob\n"
DEEP_ARRAYS = b"[" * 100_000 + b"]" * 100_000  # DuckDB's read_json dies of SIGSEGV on it
DEEP_OBJECTS = b'{"a":' * 5000 + b"1" + b"}" * 5000  # keeps read_json busy for minutes at gigabytes
WIDE_CSV = b",".join(b"c%d" % i for i in range(100_000)) + b"\n" + b",".join(b"1" for _ in range(100_000)) + b"\n"


def bomb_workbook(unpacked_mib: int = 256) -> bytes:
    """A real .xlsx (made by openpyxl) whose one sheet is replaced by ``unpacked_mib`` MiB of rows."""
    book = openpyxl.Workbook()
    book.active["A1"] = "x"
    plain = io.BytesIO()
    book.save(plain)
    row = b'<row><c t="inlineStr"><is><t>x</t></is></c></row>'
    block = row * (1024 * 1024 // len(row))
    buf = io.BytesIO()
    with (
        zipfile.ZipFile(plain) as source,
        zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf,
    ):
        for entry in source.infolist():
            if entry.filename != "xl/worksheets/sheet1.xml":
                zf.writestr(entry, source.read(entry))
                continue
            with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
                sheet.write(b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>')
                for _ in range(unpacked_mib):
                    sheet.write(block)
                sheet.write(b"</sheetData></worksheet>")
    return buf.getvalue()


def settings_with(tmp_path: Path, **ingest: object) -> Settings:
    return Settings(home=tmp_path / "home", ingest=IngestSettings(**ingest), _env_file=None)  # type: ignore[call-arg,arg-type]


def client_for(settings: Settings) -> Iterator[tuple[TestClient, Services, dict[str, str], str]]:
    services = Services.open(settings)
    try:
        principal, key = make_principal(services, "acme", role="engineer")
        with TestClient(create_app(settings, services=services)) as client:
            yield client, services, {"Authorization": f"Bearer {key}"}, principal.catalog
    finally:
        services.close()


@pytest.fixture
def defaults(tmp_path: Path) -> Iterator[tuple[TestClient, Services, dict[str, str], str]]:
    yield from client_for(settings_with(tmp_path))


@pytest.fixture
def no_structure_limits(tmp_path: Path) -> Iterator[tuple[TestClient, Services, dict[str, str], str]]:
    """Structural limits out of the way, so the parse itself meets the file; a short wall clock."""
    yield from client_for(
        settings_with(
            tmp_path,
            max_json_depth=10_000_000,
            max_csv_columns=10_000_000,
            parse_timeout_seconds=3,
            parse_memory_bytes=1536 * 1024**2,
        )
    )


def upload(client: TestClient, headers: dict[str, str], name: str, data: bytes, dataset: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    answer = client.post("/api/v1/datasets", headers=headers, files={"file": (name, data)}, data={"name": dataset})
    return answer.status_code, answer.json()


def leftovers(services: Services, catalog: str) -> list[str]:
    """What a refused upload could leave: temporary uploads and parser folders, stage folders,
    landing files or folders, a table folder."""
    home = services.settings.resolved_home
    root = services.settings.resolved_lakehouse_root / catalog
    temporary = [home / "tmp" / "uploads", home / "tmp" / "parse"]
    found = [p for folder in temporary if folder.exists() for p in folder.iterdir()]
    found += list(root.glob("*/*/_stage_*"))
    found += list((root / "_volumes" / "bronze" / "landing").glob("*"))
    found += [p for p in (root / "bronze").iterdir() if p.name == "bad"]
    return [str(p.relative_to(home.parent)) for p in found]


def assert_refused_then_next_upload_works(
    env: tuple[TestClient, Services, dict[str, str], str], name: str, data: bytes, status: int, code: str
) -> dict:  # type: ignore[type-arg]
    client, services, headers, catalog = env
    got, body = upload(client, headers, name, data, "bad")
    assert (got, body.get("code")) == (status, code), body
    assert "/" not in body["detail"] and "Traceback" not in body["detail"]
    assert leftovers(services, catalog) == []
    got, body_ok = upload(client, headers, "good.csv", GOOD, "good")  # the same worker, right after
    assert got == 201, body_ok
    assert body_ok["rows"] == 2
    return body


def test_json_nested_100000_deep_is_refused_by_its_depth_before_any_parser(defaults) -> None:  # type: ignore[no-untyped-def]
    body = assert_refused_then_next_upload_works(defaults, "deep.json", DEEP_ARRAYS, 413, "file_limit_exceeded")
    assert "ingest.max_json_depth" in body["detail"]


def test_a_parser_crash_costs_one_request_not_the_worker(no_structure_limits) -> None:  # type: ignore[no-untyped-def]
    body = assert_refused_then_next_upload_works(no_structure_limits, "deep.json", DEEP_ARRAYS, 422, "bad_file")
    assert "reader stopped on it" in body["detail"]


def test_json_objects_nested_5000_deep_are_refused_by_their_depth(defaults) -> None:  # type: ignore[no-untyped-def]
    body = assert_refused_then_next_upload_works(defaults, "objects.json", DEEP_OBJECTS, 413, "file_limit_exceeded")
    assert "ingest.max_json_depth" in body["detail"]


def test_a_runaway_parse_is_stopped_at_its_limit_and_answered(no_structure_limits) -> None:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    body = assert_refused_then_next_upload_works(
        no_structure_limits, "objects.json", DEEP_OBJECTS, 413, "file_limit_exceeded"
    )
    assert "ingest.parse_timeout_seconds" in body["detail"] or "ingest.parse_memory_bytes" in body["detail"]
    assert time.monotonic() - started < 3 + 20  # the wall clock, then one small upload on a busy machine


def test_a_csv_100000_columns_wide_is_refused_by_its_width(defaults) -> None:  # type: ignore[no-untyped-def]
    assert len(WIDE_CSV) < 1_000_000
    body = assert_refused_then_next_upload_works(defaults, "wide.csv", WIDE_CSV, 413, "file_limit_exceeded")
    assert "ingest.max_csv_columns" in body["detail"]


def test_a_wide_csv_past_the_column_limit_stops_at_the_parse_wall_clock(no_structure_limits) -> None:  # type: ignore[no-untyped-def]
    body = assert_refused_then_next_upload_works(no_structure_limits, "wide.csv", WIDE_CSV, 413, "file_limit_exceeded")
    assert "ingest.parse_timeout_seconds" in body["detail"] or "ingest.parse_memory_bytes" in body["detail"]


def test_an_xlsx_that_unpacks_to_hundreds_of_times_its_size_is_refused_as_a_zip_bomb(defaults) -> None:  # type: ignore[no-untyped-def]
    data = bomb_workbook()
    assert len(data) < 1_000_000
    body = assert_refused_then_next_upload_works(defaults, "bomb.xlsx", data, 413, "file_limit_exceeded")
    assert "ingest.max_xlsx_compression_ratio" in body["detail"]


def test_a_line_past_the_line_limit_is_refused_naming_the_setting(tmp_path: Path) -> None:
    long_line = b"id,note\n" + b"".join(b"%d,short\n" % i for i in range(1000)) + b"1," + b"x" * 5000 + b"\n"
    for env in client_for(settings_with(tmp_path, max_line_bytes=4096)):
        body = assert_refused_then_next_upload_works(env, "long.csv", long_line, 413, "file_limit_exceeded")
        assert "ingest.max_line_bytes" in body["detail"]
