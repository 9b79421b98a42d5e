"""Golden corpus: Databricks SQL, guarded and transpiled, run for real on DuckDB.

Each case is (name, Databricks SQL, expected rows). To add one, append to ``CORPUS``; the fixture
tables are created in ``FIXTURES``. Tables resolve to DuckDB tables of the same schema and name;
``VERSION AS OF n`` resolves to ``<name>_v<n>``, the table as it was at version n.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import pytest

from servicetsunami.errors import QueryRefused
from servicetsunami.sql import TableReference, guard_query, to_duckdb

CATALOG = "tenant_a"

FIXTURES = """
SET TimeZone = 'UTC';
CREATE SCHEMA bronze;
CREATE SCHEMA silver;
CREATE TABLE bronze.orders (
    id INTEGER, customer_id INTEGER, amount DECIMAL(10, 2), status VARCHAR,
    ordered_at TIMESTAMP, tags VARCHAR[], payload VARCHAR
);
INSERT INTO bronze.orders VALUES
    (1, 1, 10.50, 'paid', '2024-01-31 10:30:00', ['new', 'promo'],
     '{"customer": {"name": "Ann", "tier": "gold"}, "items": [{"sku": "A1", "qty": 2}]}'),
    (2, 1, 20.00, 'paid', '2024-02-15 08:00:00', ['repeat'],
     '{"customer": {"name": "Ann", "tier": "gold"}, "items": [{"sku": "B2", "qty": 1}]}'),
    (3, 2, 5.25, 'refunded', '2024-02-29 23:59:59', [], '{"customer": {"name": "Bob"}, "items": []}'),
    (4, 3, 99.99, 'paid', '2024-03-01 00:00:00', NULL, NULL),
    (5, 2, NULL, 'pending', '2024-03-10 12:00:00', ['promo'], '{"customer": {"name": "Bob"}}');
CREATE TABLE bronze.orders_v1 AS SELECT * FROM bronze.orders WHERE id <= 2;
CREATE TABLE silver.customers (id INTEGER, name VARCHAR, country VARCHAR, email VARCHAR);
INSERT INTO silver.customers VALUES
    (1, 'Ann', 'DE', 'ann@example.com'),
    (2, 'Bob', 'FR', NULL),
    (3, 'Cem', 'DE', 'cem@example.org'),
    (4, 'Dee', 'US', NULL);
"""


class Golden(NamedTuple):
    name: str
    sql: str
    expected: list[tuple[Any, ...]]


CORPUS: list[Golden] = [
    Golden(
        "bare table name",
        "SELECT id, status FROM orders WHERE id < 3 ORDER BY id",
        [(1, "paid"), (2, "paid")],
    ),
    Golden(
        "date_add and date_sub return dates",
        "SELECT id, date_add(to_date(ordered_at), 3), date_sub(to_date(ordered_at), 1) FROM orders "
        "WHERE id <= 2 ORDER BY id",
        [(1, date(2024, 2, 3), date(2024, 1, 30)), (2, date(2024, 2, 18), date(2024, 2, 14))],
    ),
    Golden(
        "datediff counts days end minus start",
        "SELECT id, datediff(to_date('2024-03-31'), ordered_at) FROM orders ORDER BY id",
        [(1, 60), (2, 45), (3, 31), (4, 30), (5, 21)],
    ),
    Golden(
        "date_format with a Java pattern",
        "SELECT date_format(ordered_at, 'yyyy-MM-dd HH:mm'), date_format(ordered_at, 'MMM') FROM orders "
        "WHERE id IN (1, 3) ORDER BY id",
        [("2024-01-31 10:30", "Jan"), ("2024-02-29 23:59", "Feb")],
    ),
    Golden(
        "to_date with and without a format",
        "SELECT to_date('31/01/2024', 'dd/MM/yyyy'), to_date('2024-02-29')",
        [(date(2024, 1, 31), date(2024, 2, 29))],
    ),
    Golden(
        "date_trunc keeps a timestamp, trunc gives a date, Spark unit names",
        "SELECT date_trunc('MM', ordered_at), date_trunc('DAY', ordered_at), trunc(ordered_at, 'YEAR') "
        "FROM orders WHERE id = 3",
        [(datetime(2024, 2, 1), datetime(2024, 2, 29), date(2024, 1, 1))],
    ),
    Golden(
        "year and month in GROUP BY ordinals",
        "SELECT year(ordered_at) AS y, month(ordered_at) AS m, count(*) AS n FROM orders GROUP BY 1, 2 ORDER BY 1, 2",
        [(2024, 1, 1), (2024, 2, 2), (2024, 3, 2)],
    ),
    Golden(
        "add_months clamps to the month's last day",
        "SELECT add_months(to_date('2024-01-31'), 1), add_months(to_date('2024-03-31'), -1)",
        [(date(2024, 2, 29), date(2024, 2, 29))],
    ),
    Golden(
        "months_between with Spark's day and time rules",
        "SELECT months_between(to_date('2024-03-31'), to_date('2024-02-29')), "
        "months_between('2024-03-15', '2024-01-01'), "
        "months_between(timestamp'2024-01-31 12:00:00', timestamp'2024-01-01 00:00:00')",
        [(1.0, pytest.approx(2.4516129), pytest.approx(0.98387097))],
    ),
    Golden(
        "unix_timestamp of a timestamp column and of a formatted string",
        "SELECT unix_timestamp(ordered_at), unix_timestamp('2024/03/01', 'yyyy/MM/dd') FROM orders WHERE id = 4",
        [(1709251200, 1709251200)],
    ),
    Golden(
        "QUALIFY keeps the latest order per customer",
        "SELECT customer_id, id FROM orders "
        "QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY ordered_at DESC) = 1 ORDER BY "
        "customer_id",
        [(1, 2), (2, 5), (3, 4)],
    ),
    Golden(
        "sum over a partition",
        "SELECT id, sum(amount) OVER (PARTITION BY customer_id) AS total FROM orders "
        "WHERE amount IS NOT NULL ORDER BY id",
        [(1, Decimal("30.50")), (2, Decimal("30.50")), (3, Decimal("5.25")), (4, Decimal("99.99"))],
    ),
    Golden(
        "lag within a customer",
        "SELECT id, lag(id) OVER (PARTITION BY customer_id ORDER BY ordered_at) AS prev FROM orders ORDER BY id",
        [(1, None), (2, 1), (3, None), (4, None), (5, 3)],
    ),
    Golden(
        "rank over an aggregate",
        "SELECT customer_id, count(*) AS n, rank() OVER (ORDER BY count(*) DESC) AS r FROM orders "
        "GROUP BY customer_id ORDER BY customer_id",
        [(1, 2, 1), (2, 2, 1), (3, 1, 3)],
    ),
    Golden(
        "LATERAL VIEW explode",
        "SELECT o.id, t.tag FROM orders o LATERAL VIEW explode(o.tags) t AS tag ORDER BY o.id, t.tag",
        [(1, "new"), (1, "promo"), (2, "repeat"), (5, "promo")],
    ),
    Golden(
        "LATERAL VIEW OUTER explode keeps rows without elements",
        "SELECT id, tag FROM orders LATERAL VIEW OUTER explode(tags) t AS tag ORDER BY id, tag",
        [(1, "new"), (1, "promo"), (2, "repeat"), (3, None), (4, None), (5, "promo")],
    ),
    Golden(
        "LATERAL VIEW posexplode counts from zero",
        "SELECT id, t.pos, t.tag FROM orders LATERAL VIEW posexplode(tags) t AS pos, tag WHERE id = 1 ORDER BY pos",
        [(1, 0, "new"), (1, 1, "promo")],
    ),
    Golden(
        "LATERAL VIEW posexplode without column names uses pos and col",
        "SELECT pos, col FROM orders LATERAL VIEW posexplode(tags) p WHERE id = 2",
        [(0, "repeat")],
    ),
    Golden(
        "LATERAL VIEW explode of a map names key and value",
        "SELECT k, v FROM (SELECT map('a', 1, 'b', 2) AS m) LATERAL VIEW explode(m) t AS k, v ORDER BY k",
        [("a", 1), ("b", 2)],
    ),
    Golden(
        "LATERAL VIEW posexplode of a map",
        "SELECT p, k, v FROM (SELECT map('a', 1, 'b', 2) AS m) LATERAL VIEW posexplode(m) t AS p, k, v ORDER BY p",
        [(0, "a", 1), (1, "b", 2)],
    ),
    Golden(
        "LATERAL VIEW inline of an array of structs",
        "SELECT sku, qty FROM (SELECT array(named_struct('sku', 'A1', 'qty', 2), "
        "named_struct('sku', 'B2', 'qty', 1)) AS items) "
        "LATERAL VIEW inline(items) i AS sku, qty ORDER BY sku",
        [("A1", 2), ("B2", 1)],
    ),
    Golden(
        "explode_outer in the select list keeps a NULL for an empty array",
        "SELECT id, explode_outer(tags) FROM orders WHERE id IN (3, 4) ORDER BY id",
        [(3, None), (4, None)],
    ),
    Golden(
        "explode in the select list",
        "SELECT col FROM (SELECT explode(tags) FROM orders) ORDER BY col",
        [("new",), ("promo",), ("promo",), ("repeat",)],
    ),
    Golden(
        "JSON path with the colon operator returns text",
        "SELECT id, payload:customer.name, payload:items[0].sku FROM orders WHERE payload IS NOT NULL ORDER BY id",
        [(1, "Ann", "A1"), (2, "Ann", "B2"), (3, "Bob", None), (5, "Bob", None)],
    ),
    Golden(
        "get_json_object",
        "SELECT id, get_json_object(payload, '$.customer.tier') FROM orders WHERE id IN (1, 3) ORDER BY id",
        [(1, "gold"), (3, None)],
    ),
    Golden(
        "SELECT * EXCEPT",
        "SELECT * EXCEPT (amount, ordered_at, tags, payload) FROM orders WHERE id = 1",
        [(1, 1, "paid")],
    ),
    Golden(
        "CTE with aggregate",
        "WITH paid AS (SELECT customer_id, amount FROM orders WHERE status = 'paid') "
        "SELECT customer_id, sum(amount) FROM paid GROUP BY customer_id ORDER BY customer_id",
        [(1, Decimal("30.50")), (3, Decimal("99.99"))],
    ),
    Golden(
        "CTE shadows a table of the same name",
        "WITH orders AS (SELECT 42 AS id) SELECT id FROM orders",
        [(42,)],
    ),
    Golden(
        "CASE with NULL falling through to ELSE",
        "SELECT id, CASE WHEN amount >= 50 THEN 'large' WHEN amount >= 10 THEN 'medium' ELSE 'small' END "
        "FROM orders ORDER BY id",
        [(1, "medium"), (2, "medium"), (3, "small"), (4, "large"), (5, "small")],
    ),
    Golden(
        "nvl, ifnull and coalesce",
        "SELECT id, nvl(email, 'none'), ifnull(email, '-'), coalesce(NULL, email, name) FROM "
        "silver.customers "
        "WHERE id <= 2 ORDER BY id",
        [(1, "ann@example.com", "ann@example.com", "ann@example.com"), (2, "none", "-", "Bob")],
    ),
    Golden(
        "collect_list, array_sort and size",
        "SELECT customer_id, array_sort(collect_list(status)), size(collect_list(status)) FROM orders "
        "GROUP BY customer_id ORDER BY customer_id",
        [(1, ["paid", "paid"], 2), (2, ["pending", "refunded"], 2), (3, ["paid"], 1)],
    ),
    Golden(
        "array_contains in WHERE",
        "SELECT id FROM orders WHERE array_contains(tags, 'promo') ORDER BY id",
        [(1,), (5,)],
    ),
    Golden(
        "concat_ws over values and over a collected array",
        "SELECT concat_ws(', ', name, country), "
        "(SELECT concat_ws('|', array_sort(collect_list(name))) FROM silver.customers) "
        "FROM silver.customers WHERE id = 1",
        [("Ann, DE", "Ann|Bob|Cem|Dee")],
    ),
    Golden(
        "regexp_extract groups",
        "SELECT regexp_extract(email, '^([a-z]+)@(.+)$', 1), regexp_extract(email, '^([a-z]+)@(.+)$', 2) "
        "FROM silver.customers WHERE email IS NOT NULL ORDER BY id",
        [("ann", "example.com"), ("cem", "example.org")],
    ),
    Golden(
        "GROUP BY with HAVING",
        "SELECT customer_id, count(*) AS n FROM orders GROUP BY customer_id HAVING count(*) > 1 ORDER BY customer_id",
        [(1, 2), (2, 2)],
    ),
    Golden(
        "ORDER BY ascending puts NULLs first, as Spark does",
        "SELECT id FROM orders ORDER BY amount",
        [(5,), (3,), (1,), (2,), (4,)],
    ),
    Golden(
        "ORDER BY NULLS LAST",
        "SELECT id FROM orders ORDER BY amount ASC NULLS LAST",
        [(3,), (1,), (2,), (4,), (5,)],
    ),
    Golden(
        "ORDER BY DESC with LIMIT",
        "SELECT id FROM orders ORDER BY ordered_at DESC LIMIT 2",
        [(5,), (4,)],
    ),
    Golden(
        "UNION ALL",
        "SELECT id FROM orders WHERE id < 2 UNION ALL SELECT id FROM silver.customers WHERE id > 3 ORDER BY id",
        [(1,), (4,)],
    ),
    Golden(
        "IN subquery",
        "SELECT name FROM silver.customers WHERE id IN (SELECT customer_id FROM orders WHERE status "
        "= 'paid') "
        "ORDER BY name",
        [("Ann",), ("Cem",)],
    ),
    Golden(
        "NOT EXISTS correlated",
        "SELECT c.name FROM silver.customers c "
        "WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id) ORDER BY c.name",
        [("Dee",)],
    ),
    Golden(
        "CAST AS STRING and try_cast",
        "SELECT CAST(amount AS STRING), CAST(id AS STRING) || '-x', try_cast('12' AS INT), "
        "try_cast('x' AS INT) "
        "FROM orders WHERE id = 1",
        [("10.50", "1-x", 12, None)],
    ),
    Golden("integer division with div", "SELECT 7 div 2, -7 div 2", [(3, -3)]),
    Golden("VALUES as a statement", "VALUES (1, 'a'), (2, 'b')", [(1, "a"), (2, "b")]),
    Golden(
        "VALUES as an inline table",
        "SELECT s, n FROM VALUES (1, 'x'), (2, 'y') AS v(n, s) ORDER BY n DESC",
        [("y", 2), ("x", 1)],
    ),
    Golden("range as a row source", "SELECT id FROM range(3) ORDER BY id", [(0,), (1,), (2,)]),
    Golden(
        "backtick identifiers",
        "SELECT `id`, `status` FROM `orders` WHERE `id` = 1",
        [(1, "paid")],
    ),
    Golden(
        "columns qualified with schema.table",
        "SELECT bronze.orders.id, c.name FROM bronze.orders JOIN silver.customers c "
        "ON bronze.orders.customer_id = c.id WHERE bronze.orders.id = 1",
        [(1, "Ann")],
    ),
    Golden(
        "unaliased tables keep their bare name for column references",
        "SELECT orders.id, customers.name FROM orders JOIN silver.customers ON orders.customer_id = "
        "customers.id "
        "WHERE orders.id = 3",
        [(3, "Bob")],
    ),
    Golden("time travel reads the requested version", "SELECT count(*) FROM orders VERSION AS OF 1", [(2,)]),
    Golden(
        "try_to_timestamp parses with a Spark pattern and gives NULL when it does not match",
        "SELECT try_to_timestamp('05/02/2024', 'dd/MM/yyyy'), try_to_timestamp('Mar 7, 2024', 'MMM d, yyyy'), "
        "try_to_timestamp('nope', 'dd/MM/yyyy'), try_to_timestamp('2024-01-05 10:30:00')",
        [(datetime(2024, 2, 5), datetime(2024, 3, 7), None, datetime(2024, 1, 5, 10, 30))],
    ),
]


def resolve(ref: TableReference) -> str:
    assert ref.table.catalog == CATALOG
    name = ref.table.name if ref.version is None else f"{ref.table.name}_v{ref.version}"
    return f'"{ref.table.schema}"."{name}"'


@pytest.fixture(scope="module")
def duck() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(":memory:")
    con.execute(FIXTURES)
    try:
        yield con
    finally:
        con.close()


def run(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return con.execute(to_duckdb(guard_query(sql, catalog=CATALOG), resolve=resolve)).fetchall()


def test_corpus_has_at_least_thirty_queries() -> None:
    assert len(CORPUS) >= 30
    assert len({case.name for case in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_databricks_query_returns_the_expected_rows_on_duckdb(duck: duckdb.DuckDBPyConnection, case: Golden) -> None:
    assert run(duck, case.sql) == case.expected


def test_resolver_sees_the_time_travel_version_and_the_clause_is_stripped() -> None:
    seen: list[TableReference] = []

    def recording(ref: TableReference) -> str:
        seen.append(ref)
        return "orders_at_v1"

    sql = to_duckdb(guard_query("SELECT * FROM orders VERSION AS OF 1", catalog=CATALOG), resolve=recording)
    assert [(r.table.name, r.version) for r in seen] == [("orders", 1)]
    assert "VERSION" not in sql.upper()
    assert sql == "SELECT * FROM orders_at_v1 AS orders"


def test_resolver_is_called_once_per_distinct_reference() -> None:
    seen: list[TableReference] = []

    def recording(ref: TableReference) -> str:
        seen.append(ref)
        return f"t{len(seen)}"

    guarded = guard_query(
        "SELECT * FROM orders a JOIN orders b ON a.id = b.id WHERE a.id IN (SELECT id FROM orders VERSION AS OF 1)",
        catalog=CATALOG,
    )
    to_duckdb(guarded, resolve=recording)
    assert [(r.table.name, r.version) for r in seen] == [("orders", None), ("orders", 1)]


def test_file_reader_from_items_are_inserted_verbatim_and_keep_the_alias(tmp_path: Path) -> None:
    path = tmp_path / "orders.parquet"
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"COPY (SELECT 1 AS id, 'paid' AS status UNION ALL SELECT 2, 'open') TO '{path}' (FORMAT parquet)")
        from_item = f"read_parquet(['{path}'], union_by_name=true)"
        sql = to_duckdb(
            guard_query("SELECT o.id FROM orders o WHERE o.status = 'paid'", catalog=CATALOG),
            resolve=lambda ref: from_item,
        )
        assert from_item in sql
        assert con.execute(sql).fetchall() == [(1,)]
        unaliased = to_duckdb(
            guard_query("SELECT orders.status FROM orders WHERE orders.id = 2", catalog=CATALOG),
            resolve=lambda ref: from_item,
        )
        assert con.execute(unaliased).fetchall() == [("open",)]
    finally:
        con.close()


def test_explain_runs_on_duckdb(duck: duckdb.DuckDBPyConnection) -> None:
    sql = to_duckdb(guard_query("EXPLAIN SELECT count(*) FROM orders", catalog=CATALOG), resolve=resolve)
    assert sql.startswith("EXPLAIN SELECT")
    assert duck.execute(sql).fetchall()


def test_metadata_statements_are_not_transpiled() -> None:
    with pytest.raises(ValueError, match="describe"):
        to_duckdb(guard_query("DESCRIBE orders", catalog=CATALOG), resolve=resolve)


def test_a_function_duckdb_lacks_is_refused_instead_of_mistranslated() -> None:
    with pytest.raises(QueryRefused) as info:
        to_duckdb(guard_query("SELECT soundex(name) FROM silver.customers", catalog=CATALOG), resolve=resolve)
    assert info.value.code == "query_refused"
    assert "local engine" in str(info.value)


def test_transpiling_leaves_the_guarded_statement_untouched() -> None:
    guarded = guard_query("SELECT * FROM orders VERSION AS OF 1", catalog=CATALOG)
    before = guarded.sql
    to_duckdb(guarded, resolve=resolve)
    assert guarded.statement.sql(dialect="databricks") == before
