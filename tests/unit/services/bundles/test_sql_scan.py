"""The tables of SQL text: reads and writes of every statement kind, names resolved into the tenant's
catalog, dynamic parts kept as written, other catalogs and bad names flagged, temp views skipped."""

from __future__ import annotations

import pytest

from servicetsunami.services.bundles.sql_scan import MAX_SQL_CHARS, placeholder, scan_sql

CATALOG = "tenant_acme"


def tables(text: str, **kwargs: object) -> list[tuple[str, str, int]]:
    return [(t.name, t.access, t.line) for t in scan_sql(text, catalog=CATALOG, **kwargs).tables]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM orders", [("tenant_acme.bronze.orders", "read", 1)]),
        ("SELECT * FROM Silver.Orders", [("tenant_acme.silver.orders", "read", 1)]),
        ("SELECT * FROM tenant_acme.gold.x", [("tenant_acme.gold.x", "read", 1)]),
        (
            "INSERT INTO silver.t\nSELECT * FROM bronze.s",
            [("tenant_acme.silver.t", "write", 1), ("tenant_acme.bronze.s", "read", 2)],
        ),
        ("INSERT OVERWRITE silver.t (a, b) SELECT 1, 2", [("tenant_acme.silver.t", "write", 1)]),
        (
            "CREATE OR REPLACE TABLE gold.g AS SELECT * FROM silver.s",
            [("tenant_acme.gold.g", "write", 1), ("tenant_acme.silver.s", "read", 1)],
        ),
        (
            "MERGE INTO silver.t USING bronze.s ON t.id = s.id WHEN MATCHED THEN UPDATE SET *",
            [("tenant_acme.silver.t", "write", 1), ("tenant_acme.bronze.s", "read", 1)],
        ),
        ("DELETE FROM silver.t WHERE id = 1", [("tenant_acme.silver.t", "write", 1)]),
        ("UPDATE silver.t SET a = 1", [("tenant_acme.silver.t", "write", 1)]),
        ("DROP TABLE IF EXISTS silver.t", [("tenant_acme.silver.t", "write", 1)]),
        ("WITH c AS (SELECT * FROM bronze.a) SELECT * FROM c", [("tenant_acme.bronze.a", "read", 1)]),
        (
            "SELECT 1;\nSELECT * FROM x WHERE id IN (SELECT id FROM silver.y)",
            [("tenant_acme.bronze.x", "read", 2), ("tenant_acme.silver.y", "read", 2)],
        ),
        ("SELECT * FROM range(10)", []),
    ],
)
def test_reads_and_writes_of_each_statement_kind_resolve_into_the_tenants_catalog(
    sql: str, expected: list[tuple[str, str, int]]
) -> None:
    assert tables(sql) == expected


def test_a_table_in_another_catalog_is_flagged_not_resolved() -> None:
    (found,) = scan_sql("SELECT * FROM Main.Default.T", catalog=CATALOG).tables
    assert (found.name, found.other_catalog) == ("main.default.t", True)


def test_a_name_that_is_no_table_name_is_flagged_with_why() -> None:
    (found,) = scan_sql("SELECT * FROM a.b.c.d", catalog=CATALOG).tables
    assert found.invalid is not None and not found.other_catalog


def test_dynamic_parts_are_shown_as_written_and_never_resolved() -> None:
    text = f"SELECT * FROM silver.{placeholder(0)} JOIN ${{schema}}.t ON 1 = 1 JOIN {{{{layer}}}}.u ON 1 = 1"
    found = scan_sql(text, catalog=CATALOG, dynamic={"0": "{name}"}).tables

    assert [(t.name, t.dynamic) for t in found] == [
        ("silver.{name}", True),
        ("${schema}.t", True),
        ("{{layer}}.u", True),
    ]


def test_temp_views_are_remembered_and_not_taken_for_tables() -> None:
    views: set[str] = set()
    first = tables("CREATE OR REPLACE TEMP VIEW recent AS SELECT * FROM bronze.orders", temp_views=views)
    second = tables("SELECT * FROM recent JOIN silver.recent ON 1 = 1", temp_views=views)

    assert views == {"recent"}
    assert first == [("tenant_acme.bronze.orders", "read", 1)]
    assert second == [("tenant_acme.silver.recent", "read", 1)]


def test_sql_widgets_are_read_and_removed_before_parsing() -> None:
    scanned = scan_sql("CREATE WIDGET TEXT since DEFAULT '2020-01-01';\nSELECT * FROM t", catalog=CATALOG)

    assert [(w.kind, w.name, w.default, w.line) for w in scanned.widgets] == [("text", "since", "2020-01-01", 1)]
    assert [(t.name, t.line) for t in scanned.tables] == [("tenant_acme.bronze.t", 2)]
    assert scanned.error is None


def test_sql_that_does_not_parse_or_is_too_long_is_an_error_not_an_exception() -> None:
    assert scan_sql("SELEC * FROM (", catalog=CATALOG).error
    deep = scan_sql("SELECT " + "(" * 5000 + "1" + ")" * 5000 + " FROM bronze.t", catalog=CATALOG)
    assert deep.error is not None or [t.name for t in deep.tables] == ["tenant_acme.bronze.t"]
    long = scan_sql("SELECT 1 " + " " * MAX_SQL_CHARS, catalog=CATALOG)
    assert long.error is not None and long.tables == []


def test_statement_kinds_are_reported_so_writes_can_be_told_from_reads() -> None:
    scanned = scan_sql("SELECT 1; INSERT INTO silver.t SELECT 1; DESCRIBE silver.t", catalog=CATALOG)
    assert scanned.statements == ["select", "insert", "describe"]
