"""The Source contract, run against every source: PostgreSQL (a small table in the test server's
database, which is required: these cases fail, never skip, without ``TSUNAMI_TEST_POSTGRES_URL``),
MySQL/MariaDB (a table in a database of its own on ``TSUNAMI_TEST_MYSQL_URL``'s server, required too),
a REST API (the local fake of tests/fakes/rest_api.py, paged, with an incremental cursor),
Salesforce (the local fake of tests/fakes/salesforce.py, an object of four fields),
Google Sheets (the local fake of tests/fakes/google_sheets.py, through a service account), a CSV file,
a sheet of a workbook, and the in-memory source of the tests that reads only Arrow.

A test that needs a capability says so with ``@pytest.mark.requires(...)``; against a source that
declares it lacks one, the test must refuse with ``NotSupported`` (tests/contract/conftest.py),
never special-cased by the source's kind nor skipped.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from psycopg import sql

from servicetsunami.connectors.base import ReadRequest, Source, SourceCapabilities, SourceError
from servicetsunami.connectors.files.source import FileSource
from servicetsunami.connectors.mysql import MySQLSource
from servicetsunami.connectors.postgres import PostgresConfig, PostgresSource
from servicetsunami.connectors.rest.config import RestConfig
from servicetsunami.connectors.rest.source import RestSource
from servicetsunami.connectors.salesforce.config import SalesforceConfig
from servicetsunami.connectors.salesforce.source import SalesforceSource
from servicetsunami.connectors.sheets.config import SheetsConfig
from servicetsunami.connectors.sheets.source import SheetsSource
from servicetsunami.errors import InvalidInput, TsunamiError
from tests.fakes.arrow_source import ArrowSource
from tests.fakes.google_sheets import FakeSheets
from tests.fakes.rest_api import FakeApi
from tests.fakes.salesforce import CLIENT, FakeSalesforce, sf_datetime, sf_field
from tests.integration.mysql.support import execute, mysql_config, scratch_database
from tests.integration.pg.support import connect, postgres_config
from tests.integration.rest.conftest import vet as rest_vet
from tests.integration.sheets.conftest import urls as sheets_urls

COLUMNS = ["id", "name", "amount", "updated_at"]
START = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.UTC)
# 25 rows; three share each updated_at, so batches must keep ties together
ROWS = [(i, f"name {i}", f"{i * 1.25:.2f}", START + dt.timedelta(minutes=i // 3)) for i in range(1, 26)]
EXPECTED = [{"id": i, "name": name} for i, name, _, _ in ROWS]


@dataclass
class Case:
    source: Source
    stream: str
    unreachable: Callable[[], Source]  # the same kind of source, pointed at nothing
    cursor_column: str = "updated_at"


def _postgres(tmp_path: Path) -> Iterator[Case]:
    schema = f"contract_{secrets.token_hex(4)}"
    with connect() as pg:
        pg.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        pg.execute(
            sql.SQL(
                "CREATE TABLE {}.items (id bigint PRIMARY KEY, name text, amount numeric(12,2), updated_at timestamptz)"
            ).format(sql.Identifier(schema))
        )
        with pg.cursor() as cur:
            cur.executemany(
                sql.SQL("INSERT INTO {}.items VALUES (%s, %s, %s, %s)").format(sql.Identifier(schema)), ROWS
            )
    config = postgres_config()
    source = PostgresSource(config)
    refused = PostgresConfig(host="127.0.0.1", port=1, database=config.database, user=config.user, connect_timeout=2)
    try:
        yield Case(source, f"{schema}.items", lambda: PostgresSource(refused))
    finally:
        source.close()
        with connect() as pg:
            pg.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def _mysql(tmp_path: Path) -> Iterator[Case]:
    with scratch_database() as database:
        execute(
            database,
            "CREATE TABLE items (id bigint PRIMARY KEY, name varchar(50), amount decimal(12,2), "
            "updated_at timestamp(6) NULL)",
        )
        conn_rows = [(i, name, amount, at.replace(tzinfo=None)) for i, name, amount, at in ROWS]
        for row in conn_rows:  # the test connection's session zone is UTC
            execute(database, "INSERT INTO items VALUES (%s, %s, %s, %s)", params=row)
        source = MySQLSource(mysql_config(database))
        refused = mysql_config(database, host="127.0.0.1", port=1, connect_timeout=2)
        try:
            yield Case(source, f"{database}.items", lambda: MySQLSource(refused))
        finally:
            source.close()


def _rest(tmp_path: Path) -> Iterator[Case]:
    api = FakeApi(items=0)
    api.state.rows = [
        {"id": i, "name": name, "amount": amount, "updated_at": at.isoformat()} for i, name, amount, at in ROWS
    ]
    resource = {
        "name": "items",
        "path": "/rows",
        "record_selector": "$.rows",
        "paginator": {"type": "page_number"},
        "incremental": {"cursor_field": "updated_at"},
        "primary_key": ["id"],
    }
    with api.running():
        config = RestConfig.model_validate({"base_url": api.base_url, "resources": [resource], "backoff_seconds": 0})
        refused = config.model_copy(update={"base_url": "http://127.0.0.1:1", "max_retries": 0})
        source = RestSource(config, vet=rest_vet)
        try:
            yield Case(source, "items", lambda: RestSource(refused, vet=rest_vet))
        finally:
            source.close()


def _sheets(tmp_path: Path) -> Iterator[Case]:
    fake = FakeSheets()
    key = fake.service_account("contract@project.iam.gserviceaccount.com")
    rows: list[list[Any]] = [["Items of the contract"], [], list(COLUMNS)]
    rows += [[i, name, float(amount), at.replace(tzinfo=None)] for i, name, amount, at in ROWS]
    fake.add(
        "contract-sheet-1",
        {"Notes": [["note"], ["see Items"]], "Items": rows},
        shared_with={"contract@project.iam.gserviceaccount.com"},
    )
    with fake.running():
        config = SheetsConfig(spreadsheet_id="contract-sheet-1", service_account_key=key, backoff_seconds=0)
        source = SheetsSource(config, urls=sheets_urls(fake), vet=rest_vet)
        gone = config.model_copy(update={"spreadsheet_id": "not-there-at-all", "max_retries": 0})
        try:
            yield Case(source, "Items", lambda: SheetsSource(gone, urls=sheets_urls(fake), vet=rest_vet))
        finally:
            source.close()


def _salesforce(tmp_path: Path) -> Iterator[Case]:
    fake = FakeSalesforce()
    fake.state.page_size = 7  # several pages of nextRecordsUrl
    described = [
        sf_field("id", "int"),
        sf_field("name", "string"),
        sf_field("amount", "currency", precision=12, scale=2),
        sf_field("updated_at", "datetime"),
    ]
    records = [
        {"id": i, "name": name, "amount": float(amount), "updated_at": sf_datetime(at)} for i, name, amount, at in ROWS
    ]
    fake.add("Item__c", described, records)
    with fake.running():
        config = SalesforceConfig(
            instance_url=fake.base_url, client_id=CLIENT[0], client_secret=CLIENT[1], backoff_seconds=0
        )
        source = SalesforceSource(config, vet=rest_vet)
        refused = config.model_copy(update={"instance_url": "http://127.0.0.1:1", "max_retries": 0})
        try:
            yield Case(source, "Item__c", lambda: SalesforceSource(refused, vet=rest_vet))
        finally:
            source.close()


def _csv(tmp_path: Path) -> Iterator[Case]:
    path = tmp_path / "items.csv"
    lines = [",".join(COLUMNS)] + [f"{i},{name},{amount},{at.isoformat()}" for i, name, amount, at in ROWS]
    path.write_text("\n".join(lines) + "\n")
    source = FileSource(path)
    try:
        yield Case(source, "items.csv", lambda: FileSource(tmp_path / "gone.csv"))
    finally:
        source.close()


def _xlsx_sheet(tmp_path: Path) -> Iterator[Case]:
    path = tmp_path / "book.xlsx"
    wb = openpyxl.Workbook()
    notes = wb.active
    assert notes is not None
    notes.title = "Notes"
    notes.append(["note"])
    notes.append(["the items are on the next sheet"])
    items = wb.create_sheet("Items")
    items.append(COLUMNS)
    for i, name, amount, at in ROWS:
        items.append([i, name, float(amount), at.replace(tzinfo=None)])
    wb.save(path)
    source = FileSource(path)
    try:
        yield Case(source, "book.xlsx:Items", lambda: FileSource(tmp_path / "gone.xlsx"))
    finally:
        source.close()


def _arrow(tmp_path: Path) -> Iterator[Case]:
    items = pa.table(
        {
            "id": [i for i, *_ in ROWS],
            "name": [name for _, name, *_ in ROWS],
            "amount": [amount for *_, amount, _ in ROWS],
            "updated_at": pa.array([at for *_, at in ROWS], pa.timestamp("us", "UTC")),
        }
    )
    yield Case(ArrowSource({"items": items}, chunk_rows=10), "items", lambda: ArrowSource(None))


SOURCES: dict[str, Callable[[Path], Iterator[Case]]] = {
    "postgres": _postgres,
    "mysql": _mysql,
    "rest": _rest,
    "sheets": _sheets,
    "salesforce": _salesforce,
    "csv": _csv,
    "xlsx_sheet": _xlsx_sheet,
    "arrow_only": _arrow,
}


@pytest.fixture(params=sorted(SOURCES))
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Case]:
    yield from SOURCES[request.param](tmp_path)


@pytest.fixture
def capabilities(case: Case) -> SourceCapabilities:
    return case.source.capabilities


def _ids_and_names(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(({"id": r["id"], "name": r["name"]} for r in rows), key=lambda r: r["id"])


def test_check_succeeds_on_a_reachable_source(case: Case) -> None:
    result = case.source.check()
    assert result.ok, result.diagnosis
    assert result.problem is None and result.latency_ms >= 0


def test_check_explains_what_is_wrong_with_an_unreachable_source_instead_of_raising(case: Case) -> None:
    source = case.unreachable()
    try:
        result = source.check()
    finally:
        source.close()
    assert not result.ok
    assert result.problem and result.diagnosis


def test_discover_finds_the_stream_with_its_columns(case: Case) -> None:
    streams = {s.name: s for s in case.source.discover()}
    assert case.stream in streams
    info = streams[case.stream]
    assert info.readable
    assert [c.name for c in info.columns] == COLUMNS
    assert all(c.source_type for c in info.columns)


def test_read_returns_every_row_with_the_extra_columns(case: Case) -> None:
    reader = case.source.read(ReadRequest(case.stream, extra_columns={"_sync_id": "run-1"}))
    rows = reader.read_all().to_pylist()
    assert _ids_and_names(rows) == EXPECTED
    assert {r["_sync_id"] for r in rows} == {"run-1"}


def test_stream_finds_one_stream_by_name_and_an_unknown_name_is_invalid_input(case: Case) -> None:
    info = case.source.stream(case.stream)
    assert info.name == case.stream and [c.name for c in info.columns] == COLUMNS
    with pytest.raises(InvalidInput):
        case.source.stream(f"{case.stream}_nowhere")


def test_progress_is_a_share_of_the_read_or_unknown(case: Case) -> None:
    case.source.read(ReadRequest(case.stream)).read_all()
    progress = case.source.progress()
    assert progress is None or 0 <= progress <= 100


@pytest.mark.requires("stage_parquet")
def test_stage_parquet_writes_files_with_the_rows_that_read_returns(case: Case, tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    stage.mkdir()
    case.source.stage_parquet(ReadRequest(case.stream, extra_columns={"_sync_id": "run-1"}), stage)
    files = sorted(stage.rglob("*.parquet"))
    assert files
    rows = ds.dataset(files, format="parquet").to_table().to_pylist()
    assert _ids_and_names(rows) == EXPECTED
    assert {r["_sync_id"] for r in rows} == {"run-1"}
    read = case.source.read(ReadRequest(case.stream, extra_columns={"_sync_id": "run-1"})).read_all()
    assert ds.dataset(files, format="parquet").schema.names == read.schema.names


def test_a_prepared_source_reads_every_row(case: Case) -> None:
    case.source.prepare()
    case.source.prepare()  # twice is harmless
    rows = case.source.read(ReadRequest(case.stream)).read_all().to_pylist()
    assert _ids_and_names(rows) == EXPECTED


def test_preparing_an_unreachable_source_raises_nothing_and_the_read_reports_the_problem(case: Case) -> None:
    source = case.unreachable()
    try:
        source.prepare()
        with pytest.raises(TsunamiError) as caught:
            source.read(ReadRequest(case.stream)).read_all()
    finally:
        source.close()
    assert caught.value.message


@pytest.mark.requires("incremental")
def test_the_first_cursor_query_of_a_prepared_unreachable_source_reports_the_problem(case: Case) -> None:
    source = case.unreachable()
    try:
        source.prepare()
        with pytest.raises(SourceError) as caught:  # the first query of an incremental run
            source.cursor_bound(_window(case, None), rows=4)
    finally:
        source.close()
    assert caught.value.message


def test_reading_an_unknown_stream_is_invalid_input(case: Case) -> None:
    with pytest.raises(InvalidInput):
        case.source.read(ReadRequest(f"{case.stream}_nowhere")).read_all()


@pytest.mark.requires("incremental")
def test_cursor_bounds_partition_the_rows_without_gaps_or_overlaps(case: Case) -> None:
    batches: list[list[dict[str, Any]]] = []
    lower: Any = None
    while (upper := case.source.cursor_bound(_window(case, lower), rows=4)) is not None:
        batch = case.source.read(_window(case, lower, upper)).read_all().to_pylist()
        assert all((lower is None or r["updated_at"] > lower) and r["updated_at"] <= upper for r in batch)
        batches.append(batch)
        lower = upper
        assert len(batches) <= len(ROWS), "the bounds stopped advancing"
    ids = [r["id"] for batch in batches for r in batch]
    assert sorted(ids) == [r["id"] for r in EXPECTED]  # every row once: no gap, no overlap
    assert all(len(batch) >= 4 for batch in batches[:-1])  # ties stay together, batches are not short
    assert len(batches) > 1


@pytest.mark.requires("incremental")
def test_cursor_bound_is_none_once_every_row_was_read(case: Case) -> None:
    last = max(at for *_, at in ROWS)
    assert case.source.cursor_bound(_window(case, last), rows=4) is None


@pytest.mark.requires("incremental")
def test_an_incremental_read_on_an_unknown_cursor_column_is_invalid_input(case: Case) -> None:
    with pytest.raises(InvalidInput):
        case.source.read(ReadRequest(case.stream, cursor_column="nope", cursor_after=1)).read_all()


def _window(case: Case, after: Any, upto: Any = None) -> ReadRequest:
    return ReadRequest(case.stream, cursor_column=case.cursor_column, cursor_after=after, cursor_upto=upto)
