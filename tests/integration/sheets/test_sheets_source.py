"""The Google Sheets source against the local fake of Sheets API v4 and Google's token endpoint:
types from unformatted values and number formats, header rows found under titles, ranges as
streams, the CSV export of a public sheet, the service account's signed assertion, and the problems a
person can act on (not shared, not public, wrong key, rate limits)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pyarrow as pa
import pytest

from servicetsunami.connectors.base import ReadRequest
from servicetsunami.connectors.registry import source_kind
from servicetsunami.connectors.sheets.config import SheetsConfig
from servicetsunami.connectors.sheets.source import SheetsSource
from servicetsunami.errors import InvalidInput, PermissionDenied, SourceError
from tests.fakes.google_sheets import FakeSheets
from tests.integration.sheets.conftest import EMAIL, urls

Make = Callable[..., SheetsSource]

TYPED = [
    ["Orders export", "", "", ""],
    [],
    ["id", "placed", "paid_at", "slot", "total", "ok", "note", "code"],
    [1, dt.date(2024, 2, 29), dt.datetime(2024, 3, 1, 9, 30, 15), dt.time(8, 15), 10.5, True, "first", 7],
    [2, dt.date(1899, 12, 30), dt.datetime(2024, 7, 1, 23, 59, 59, 500000), dt.time(23, 59, 59), 3, False, "", "B7"],
    [3, "", "", "", "", "", "third", 9],
]


def _book(fake: FakeSheets, **options: object) -> None:
    fake.add("typed-sheet-01", {"Orders": TYPED, "Empty": []}, shared_with={EMAIL}, **options)


def test_values_land_typed_with_dates_from_serial_numbers_under_a_detected_header(
    fake: FakeSheets, sheets: Make
) -> None:
    _book(fake)
    source = sheets(spreadsheet_id="typed-sheet-01")
    info = source.stream("Orders")
    assert [(c.name, c.source_type) for c in info.columns] == [
        ("id", "bigint"),
        ("placed", "date"),
        ("paid_at", "timestamp"),
        ("slot", "time"),
        ("total", "double"),
        ("ok", "boolean"),
        ("note", "string"),
        ("code", "string"),
    ]
    assert info.cursor_candidates == ["placed", "paid_at"]
    table = source.read(ReadRequest("Orders")).read_all()
    assert table.schema.field("paid_at").type == pa.timestamp("us", "UTC")
    assert table.to_pylist() == [
        {
            "id": 1,
            "placed": dt.date(2024, 2, 29),
            "paid_at": dt.datetime(2024, 3, 1, 9, 30, 15, tzinfo=dt.UTC),
            "slot": "08:15:00",
            "total": 10.5,
            "ok": True,
            "note": "first",
            "code": "7",
        },
        {
            "id": 2,
            "placed": dt.date(1899, 12, 30),
            "paid_at": dt.datetime(2024, 7, 1, 23, 59, 59, 500000, tzinfo=dt.UTC),
            "slot": "23:59:59",
            "total": 3.0,
            "ok": False,
            "note": None,
            "code": "B7",
        },
        {
            "id": 3,
            "placed": None,
            "paid_at": None,
            "slot": None,
            "total": None,
            "ok": None,
            "note": "third",
            "code": "9",
        },
    ]


def test_date_times_are_the_spreadsheets_wall_clock_in_its_time_zone_landed_as_utc(
    fake: FakeSheets, sheets: Make
) -> None:
    _book(fake, time_zone="Europe/Paris")
    rows = sheets(spreadsheet_id="typed-sheet-01").read(ReadRequest("Orders")).read_all().to_pylist()
    assert rows[0]["paid_at"] == dt.datetime(2024, 3, 1, 8, 30, 15, tzinfo=dt.UTC)  # CET, UTC+1
    assert rows[1]["paid_at"] == dt.datetime(2024, 7, 1, 21, 59, 59, 500000, tzinfo=dt.UTC)  # CEST, UTC+2


def test_every_sheet_is_a_stream_and_an_empty_one_has_no_columns(fake: FakeSheets, sheets: Make) -> None:
    _book(fake)
    streams = {s.name: s for s in sheets(spreadsheet_id="typed-sheet-01").discover()}
    assert list(streams) == ["Orders", "Empty"]
    assert streams["Empty"].columns == []
    assert fake.state.requests.count("/v4/spreadsheets/typed-sheet-01/values:batchGet") == 1


def test_ranges_are_streams_and_header_row_settings_are_honoured(fake: FakeSheets, sheets: Make) -> None:
    _book(fake)
    ranged = sheets(
        spreadsheet_id="https://docs.google.com/spreadsheets/d/typed-sheet-01/edit#gid=0",
        ranges=[{"name": "ids", "range": "Orders!A3:A5"}, {"name": "notes", "range": "'Orders'!G4:H6"}],
    )
    assert [s.name for s in ranged.discover()] == ["ids", "notes"]
    assert ranged.read(ReadRequest("ids")).read_all().to_pylist() == [{"id": 1}, {"id": 2}]
    headerless = sheets(spreadsheet_id="typed-sheet-01", ranges=[{"name": "n", "range": "Orders!G4:H6"}], header_row=0)
    assert headerless.read(ReadRequest("n")).read_all().to_pylist() == [
        {"a": "first", "b": "7"},
        {"a": None, "b": "B7"},  # one text cell makes the column text
        {"a": "third", "b": "9"},
    ]
    third_row = sheets(spreadsheet_id="typed-sheet-01", header_row=3)
    assert [c.name for c in third_row.stream("Orders").columns][:2] == ["id", "placed"]


def test_a_header_less_range_is_named_by_column_letters(fake: FakeSheets, sheets: Make) -> None:
    fake.add("letters-sheet", {"Data": [[1, "a"], [2, "b"]]}, shared_with={EMAIL})
    table = sheets(spreadsheet_id="letters-sheet").read(ReadRequest("Data")).read_all()
    assert table.to_pylist() == [{"a": 1, "b": "a"}, {"a": 2, "b": "b"}]


def test_incremental_reads_keep_the_rows_above_the_cursor(fake: FakeSheets, sheets: Make) -> None:
    _book(fake)
    source = sheets(spreadsheet_id="typed-sheet-01")
    after = dt.datetime(2024, 3, 1, 9, 30, 15, tzinfo=dt.UTC)
    request = ReadRequest("Orders", cursor_column="paid_at", cursor_after=after)
    assert source.cursor_bound(request, rows=10) == dt.datetime(2024, 7, 1, 23, 59, 59, 500000, tzinfo=dt.UTC)
    assert [r["id"] for r in source.read(request).read_all().to_pylist()] == [2]
    with pytest.raises(InvalidInput):
        source.read(ReadRequest("Orders", cursor_column="paid_at", cursor_after=[1])).read_all()


def test_the_assertion_is_signed_for_the_operators_token_endpoint_and_the_keys_token_uri_is_ignored(
    fake: FakeSheets, sheets: Make
) -> None:
    _book(fake)
    assert sheets(spreadsheet_id="typed-sheet-01").check().ok
    (claims,) = fake.state.assertions
    assert claims["iss"] == EMAIL and claims["aud"] == fake.token_url
    assert claims["scope"] == "https://www.googleapis.com/auth/spreadsheets.readonly"


def test_an_expired_token_is_renewed_once_when_the_api_answers_401(fake: FakeSheets, sheets: Make) -> None:
    _book(fake)
    source = sheets(spreadsheet_id="typed-sheet-01")
    source.discover()
    fake.state.tokens.clear()  # revoked behind the source's back
    assert source.read(ReadRequest("Orders")).read_all().num_rows == 3
    assert len(fake.state.assertions) == 2


def test_a_spreadsheet_not_shared_with_the_account_is_a_permission_problem(fake: FakeSheets, sheets: Make) -> None:
    fake.add("private-sheet-1", {"S": [["a"], [1]]})
    result = sheets(spreadsheet_id="private-sheet-1").check()
    assert (result.ok, result.problem) == (False, "permission")
    missing = sheets(spreadsheet_id="missing-sheet-1").check()
    assert (missing.ok, missing.problem) == (False, "not_found")


def test_a_key_the_token_endpoint_does_not_know_is_an_auth_problem(fake: FakeSheets, sheets: Make) -> None:
    _book(fake)
    stranger = FakeSheets().service_account(EMAIL)  # same account name, another key
    result = sheets(spreadsheet_id="typed-sheet-01", service_account_key=stranger).check()
    assert (result.ok, result.problem) == (False, "auth")


def test_a_rate_limited_request_is_retried_after_what_the_api_asks(fake: FakeSheets, sheets: Make) -> None:
    _book(fake)
    fake.fail("/v4/spreadsheets/typed-sheet-01/values/", 429, times=2, retry_after="0")
    assert sheets(spreadsheet_id="typed-sheet-01").read(ReadRequest("Orders")).read_all().num_rows == 3


def test_a_public_sheet_is_read_from_its_csv_export(fake: FakeSheets, sheets: Make) -> None:
    fake.add(
        "public-sheet-1",
        {"First": [["a"]], "Prices": [["sku", "price", "since"], ["x", 1.5, dt.datetime(2024, 1, 2, 3, 4, 5)]]},
        public=True,
    )
    source = sheets(spreadsheet_id="public-sheet-1", auth="public", sheets=[{"name": "prices", "gid": 1}])
    assert source.check().ok
    info = source.stream("prices")
    assert [c.name for c in info.columns] == ["sku", "price", "since"] and info.cursor_candidates == ["since"]
    assert source.read(ReadRequest("prices")).read_all().to_pylist() == [
        {"sku": "x", "price": 1.5, "since": dt.datetime(2024, 1, 2, 3, 4, 5)}
    ]
    assert all(a is None for a in fake.state.seen_authorization)


def test_a_private_sheet_asked_for_as_public_is_a_permission_problem(fake: FakeSheets, sheets: Make) -> None:
    _book(fake)
    result = sheets(spreadsheet_id="typed-sheet-01", auth="public").check()
    assert (result.ok, result.problem) == (False, "permission")


def test_google_hosts_are_vetted_like_every_source_host(fake: FakeSheets, key: str) -> None:
    config = SheetsConfig(spreadsheet_id="typed-sheet-01", service_account_key=key, max_retries=0)
    refused: list[tuple[str, int]] = []

    def refuse(host: str, port: int) -> list[str]:
        refused.append((host, port))
        raise PermissionDenied("refused")

    source = SheetsSource(config, urls=urls(fake), vet=refuse)
    try:
        with pytest.raises(PermissionDenied):
            source.discover()
    finally:
        source.close()
    assert refused and not fake.state.requests


def test_a_key_that_is_not_a_service_account_key_is_refused_without_repeating_it() -> None:
    kind = source_kind("sheets")
    with pytest.raises(InvalidInput) as caught:
        kind.parse({"spreadsheet_id": "typed-sheet-01"}, {"service_account_key": '{"private_key": "PLANTED-KEY"}'})
    assert "PLANTED-KEY" not in caught.value.message and "client_email" in caught.value.message
    with pytest.raises(InvalidInput):
        kind.parse({"spreadsheet_id": "no"}, {"service_account_key": "{}"})


def test_reading_a_stream_the_spreadsheet_lacks_names_its_streams(fake: FakeSheets, sheets: Make) -> None:
    _book(fake)
    with pytest.raises(InvalidInput) as caught:
        sheets(spreadsheet_id="typed-sheet-01").read(ReadRequest("Nope"))
    assert "Orders" in caught.value.message
    with pytest.raises(SourceError):
        sheets(spreadsheet_id="missing-sheet-1", max_retries=0).read(ReadRequest("Orders"))
