"""File ingestion through the service layer: real files, real Delta tables, real DuckDB."""

from __future__ import annotations

import datetime as dt
import io
import json
import pathlib
import re

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from servicetsunami.errors import BadFile, Conflict, InvalidInput, NotFound, PermissionDenied
from servicetsunami.services.catalog.query import query_sql
from servicetsunami.services.catalog.tables import describe_table, list_tables
from servicetsunami.services.container import Services
from servicetsunami.services.ingestion.uploads import FileOptions, upload_file
from servicetsunami.tenancy import Principal
from tests.helpers import make_principal

CSV = b"Order ID,Customer Name,Amount,Ordered At\n1,Ann,10.50,2024-01-02\n2,Bob,3.25,2024-01-03\n"


def up(svc: Services, p: Principal, name: str, data: bytes, dataset: str = "orders", **kw: object):  # type: ignore[no-untyped-def]
    options = kw.pop("options", None)
    return upload_file(svc, p, file_name=name, dataset_name=dataset, content=data, options=options, **kw)  # type: ignore[arg-type]


def rows(svc: Services, p: Principal, sql: str) -> list[list[object]]:
    return query_sql(svc, p, sql).rows


def test_a_csv_lands_in_bronze_with_snake_case_names_types_and_lineage_columns(
    services: Services, acme: Principal
) -> None:
    result = up(services, acme, "orders.csv", CSV)
    assert result.table == "bronze.orders" and result.rows == 2 and result.version == 0
    desc = describe_table(services, acme, "orders")
    cols = {c.name: c for c in desc.columns}
    assert list(cols)[:4] == ["order_id", "customer_name", "amount", "ordered_at"]
    assert cols["order_id"].type == "BIGINT" and cols["ordered_at"].type == "DATE"
    assert cols["order_id"].comment == "Order ID"
    assert {"_ingested_at", "_source", "_sync_id"} <= set(cols)
    assert rows(services, acme, "SELECT customer_name, _source FROM orders ORDER BY order_id") == [
        ["Ann", "file:orders.csv"],
        ["Bob", "file:orders.csv"],
    ]
    assert desc.dataset and desc.dataset["source_name"] == "orders.csv"


def test_the_original_file_is_kept_in_the_landing_volume(services: Services, acme: Principal) -> None:
    result = up(services, acme, "orders.csv", CSV)
    assert result.landing_path.startswith(f"/Volumes/{acme.catalog}/bronze/landing/uploads/")
    files = services.engine.list_files(acme.catalog, "bronze", "landing")
    assert [f.path for f in files] == [result.landing_path]


def test_modes_create_append_and_overwrite(services: Services, acme: Principal) -> None:
    up(services, acme, "orders.csv", CSV)
    with pytest.raises(Conflict):
        up(services, acme, "orders.csv", CSV)
    up(services, acme, "orders.csv", CSV, mode="append")
    assert rows(services, acme, "SELECT count(*) FROM orders") == [[4]]
    up(services, acme, "more.csv", b"a\n1\n", mode="overwrite")
    assert rows(services, acme, "SELECT a FROM orders") == [[1]]
    assert describe_table(services, acme, "orders").version == 2


def test_tsv_quoting_header_detection_and_latin1(services: Services, acme: Principal) -> None:
    up(services, acme, "t.tsv", b'x\ty\n1\t"a\tb"\n', dataset="tabs")
    assert rows(services, acme, "SELECT x, y FROM tabs") == [[1, "a\tb"]]
    up(services, acme, "semi.csv", b"1;alpha\n2;beta\n", dataset="semi")
    assert rows(services, acme, "SELECT count(*) FROM semi") == [[2]]
    up(
        services,
        acme,
        "l.csv",
        "name\nJosé\n".encode("latin-1"),
        dataset="latin",
        options=FileOptions(encoding="latin-1"),
    )
    assert rows(services, acme, "SELECT name FROM latin") == [["José"]]


def test_a_latin1_csv_sent_as_utf8_is_refused_with_the_encoding_that_works(services: Services, acme: Principal) -> None:
    data = "name,city\nJosé,Málaga\nZoë,Köln\n".encode("latin-1")
    with pytest.raises(BadFile) as info:
        up(services, acme, "l.csv", data, dataset="latin")
    assert info.value.code == "bad_file"
    assert "encoding=latin-1" in info.value.message
    up(services, acme, "l.csv", data, dataset="latin", options=FileOptions(encoding="latin-1"))
    assert rows(services, acme, "SELECT city FROM latin ORDER BY name") == [["Málaga"], ["Köln"]]


def test_excel_named_sheet_and_all_sheets(services: Services, acme: Principal, tmp_path) -> None:  # type: ignore[no-untyped-def]
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Sales Q1"
    ws.append(["Order ID", "Amount", "When"])
    ws.append([1, 2.5, dt.date(2024, 1, 1)])
    ws.append([2, 3.0, dt.date(2024, 1, 2)])
    ws2 = wb.create_sheet("Sales Q2")
    ws2.append(["Order ID", "Amount", "When"])
    ws2.append([3, 4.0, dt.date(2024, 4, 1)])
    buf = io.BytesIO()
    wb.save(buf)
    one = up(services, acme, "book.xlsx", buf.getvalue(), dataset="q1", options=FileOptions(sheet="Sales Q1"))
    assert one.rows == 2
    assert rows(services, acme, "SELECT order_id, amount FROM q1 ORDER BY order_id") == [[1, 2.5], [2, 3.0]]
    assert [c.type for c in one.columns[:1]] == ["BIGINT"]
    both = up(services, acme, "book.xlsx", buf.getvalue(), dataset="sales")
    assert both.rows == 3 and both.sheets == ["Sales Q1", "Sales Q2"]
    assert rows(services, acme, "SELECT _sheet, count(*) FROM sales GROUP BY 1 ORDER BY 1") == [
        ["Sales Q1", 2],
        ["Sales Q2", 1],
    ]
    with pytest.raises(BadFile, match="Nope"):
        up(services, acme, "book.xlsx", buf.getvalue(), dataset="nope", options=FileOptions(sheet="Nope"))


def test_parquet_json_and_ndjson(services: Services, acme: Principal) -> None:
    buf = io.BytesIO()
    pq.write_table(pa.table({"Id": [1, 2], "Price": [pa.scalar(1.5), pa.scalar(2.5)]}), buf)
    up(services, acme, "p.parquet", buf.getvalue(), dataset="pq")
    assert rows(services, acme, "SELECT id, price FROM pq ORDER BY id") == [[1, 1.5], [2, 2.5]]
    up(
        services,
        acme,
        "j.json",
        json.dumps([{"a": 1, "b": {"c": "x"}}, {"a": 2, "b": {"c": "y"}}]).encode(),
        dataset="js",
    )
    assert rows(services, acme, "SELECT a, b.c FROM js ORDER BY a") == [[1, "x"], [2, "y"]]
    up(services, acme, "n.ndjson", b'{"a": 1}\n{"a": 2, "z": "new"}\n', dataset="nd")
    assert rows(services, acme, "SELECT a, z FROM nd ORDER BY a") == [[1, None], [2, "new"]]


def test_a_type_change_late_in_a_file_is_handled_by_a_full_scan(services: Services, acme: Principal) -> None:
    body = b"n\n" + b"1\n" * 30_000 + b"x\n"
    result = up(services, acme, "late.csv", body, dataset="late")
    assert result.rows == 30_001
    assert [c.type for c in result.columns if c.name == "n"] == ["STRING"]


@pytest.mark.parametrize(
    ("name", "data", "needle"),
    [
        ("ragged.csv", b"a,b\n1,2\n3,4,5\n", "line 3 has 3 fields"),
        ("bad.csv", b"a,b\n1,ok\n2,\xff\xfe\n", "Line: 3"),
        ("empty.csv", b"", "empty"),
        ("header_only.csv", b"a,b\n", "no data rows"),
        ("bad.json", b'[{"a": 1}, {"a": ', "bad.json"),
        ("broken.xlsx", b"not a zip", "broken.xlsx"),
        ("broken.parquet", b"PAR1 nope", "broken.parquet"),
    ],
)
def test_a_bad_file_is_refused_with_a_named_reason_and_leaves_nothing_behind(
    services: Services, acme: Principal, name: str, data: bytes, needle: str
) -> None:
    with pytest.raises(BadFile) as info:
        up(services, acme, name, data, dataset="bad")
    assert needle.lower() in info.value.message.lower()
    assert "Traceback" not in info.value.message
    assert list_tables(services, acme) == []
    assert services.engine.list_files(acme.catalog, "bronze", "landing") == []
    assert not (services.settings.resolved_lakehouse_root / acme.catalog / "bronze" / "bad").exists()


@pytest.mark.parametrize(
    "data",
    [b"a,b\n1,2,3\n4\n", b"a;b\n1;2;3\n4\n", b"a|b|c\n1\n2|3\n", b"a,b\n1,2,3\n4,5\n"],
    ids=["commas", "semicolons", "pipes", "long-then-right"],
)
def test_a_ragged_csv_is_refused_naming_its_first_bad_line_not_read_as_one_column(
    services: Services, acme: Principal, data: bytes
) -> None:
    with pytest.raises(BadFile) as info:
        up(services, acme, "ragged.csv", data, dataset="ragged")
    assert (info.value.code, info.value.details.get("line")) == ("bad_file", 2)
    assert list_tables(services, acme) == []


@pytest.mark.parametrize(
    "data",
    [b"name\nann\nbob\n", b'note\n"Smith, John"\n"Doe, Jane"\n', b"a,b\n1,2\n3,4\n"],
    ids=["one-column", "quoted-commas", "two-columns"],
)
def test_a_regular_csv_is_still_read(services: Services, acme: Principal, data: bytes) -> None:
    assert up(services, acme, "fine.csv", data, dataset="fine").rows == 2


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("broken.parquet", b"PAR1 nope"),
        ("tiny.parquet", b"x"),
        ("sniff.csv", b'a,b\n1,2\n\r\n--XXjunk"\n'),
        ("bad.json", b'[{"a": 1}, {"a": '),
        ("broken.xlsx", b"not a zip"),
        ("bad.ndjson", b'{"a": 1}\n{"a": \n'),
    ],
)
@pytest.mark.parametrize("sent_as", ["content", "path"])
def test_a_bad_file_is_named_as_the_caller_named_it_never_by_a_server_path(
    services: Services, acme: Principal, tmp_path: pathlib.Path, name: str, data: bytes, sent_as: str
) -> None:
    stored = tmp_path / "uploads" / "upload-0123456789abcdef.bin"
    stored.parent.mkdir()
    stored.write_bytes(data)
    sent: dict[str, object] = {"content": data} if sent_as == "content" else {"path": stored}
    with pytest.raises(BadFile) as info:
        upload_file(services, acme, file_name=name, dataset_name="bad", **sent)  # type: ignore[arg-type]
    message = info.value.message
    assert info.value.code == "bad_file"
    assert message.startswith(f"{name}: ")
    assert str(tmp_path) not in message and "upload-" not in message
    assert not re.search(r"(^|[\s'\"])/\w+/", message), message


def test_a_bad_append_keeps_the_table_at_its_version(services: Services, acme: Principal) -> None:
    up(services, acme, "orders.csv", CSV)
    with pytest.raises(BadFile):
        up(services, acme, "ragged.csv", b"a,b\n1,2\n3,4,5\n", mode="append")
    assert describe_table(services, acme, "orders").version == 0
    assert rows(services, acme, "SELECT count(*) FROM orders") == [[2]]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"file_name": "x.xls"}, BadFile),
        ({"file_name": "x.docx"}, InvalidInput),
        ({"file_name": "../x.csv"}, InvalidInput),
        ({"dataset_name": "Bad Name"}, InvalidInput),
        ({"mode": "upsert"}, InvalidInput),
    ],
)
def test_bad_arguments_get_clear_errors(services: Services, acme: Principal, kwargs, error) -> None:  # type: ignore[no-untyped-def]
    args = {"file_name": "x.csv", "dataset_name": "x", "mode": "create"} | kwargs
    with pytest.raises(error):
        upload_file(services, acme, content=b"a\n1\n", **args)
    assert list_tables(services, acme) == []


def test_analysts_may_not_upload(services: Services) -> None:
    analyst, _ = make_principal(services, "acme", role="analyst")
    with pytest.raises(PermissionDenied):
        up(services, analyst, "orders.csv", CSV)


def test_one_tenant_cannot_see_or_query_another_tenants_tables(
    services: Services, acme: Principal, globex: Principal
) -> None:
    up(services, acme, "orders.csv", CSV, dataset="secret")
    assert list_tables(services, globex) == []
    for sql in ("SELECT * FROM secret", "SELECT * FROM bronze.secret", f"SELECT * FROM {acme.catalog}.bronze.secret"):
        with pytest.raises((PermissionDenied, NotFound)):
            query_sql(services, globex, sql)


def test_sheets_with_different_columns_load_into_one_table(services: Services, acme: Principal) -> None:
    wb = openpyxl.Workbook()
    orders = wb.active
    orders.title = "Orders"
    orders.append(["id", "name"])
    orders.append([1, "a"])
    other = wb.create_sheet("Other")
    other.append(["k"])
    other.append([2.5])
    buf = io.BytesIO()
    wb.save(buf)
    result = up(services, acme, "mixed.xlsx", buf.getvalue(), dataset="mixed")
    assert result.rows == 2
    assert {c.name: c.type for c in result.columns}["id"] == "BIGINT"
    assert rows(services, acme, "SELECT id, k, _sheet FROM mixed ORDER BY _sheet") == [
        [1, None, "Orders"],
        [None, 2.5, "Other"],
    ]


def test_an_old_version_is_described_with_its_own_commit_time_and_history_is_plain_json(
    services: Services, acme: Principal
) -> None:
    up(services, acme, "a.csv", b"x,y\n1,2\n", dataset="grow")
    up(services, acme, "a.csv", b"x,y\n3,4\n", dataset="grow", mode="append")
    first = describe_table(services, acme, "grow", version=0)
    latest = describe_table(services, acme, "grow")
    times = {entry.version: entry.timestamp for entry in latest.history}
    assert (first.version, latest.version) == (0, 1)
    assert first.updated_at == times[0] and latest.updated_at == times[1]
    assert times[0] is not None and times[1] is not None and times[0] < times[1]
    created = next(entry for entry in latest.history if entry.version == 0)
    assert isinstance(created.parameters["metadata"], dict)
    assert isinstance(created.parameters["metadata"]["schemaString"], dict)
    assert created.parameters["location"] == "tenant_acme.bronze.grow"
    assert str(services.settings.resolved_home) not in json.dumps(latest.model_dump(mode="json"))
