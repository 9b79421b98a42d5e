"""The query guard: what it refuses (and how it says so), and how it qualifies what it accepts."""

from __future__ import annotations

import pytest
from sqlglot import exp

from servicetsunami.errors import (
    InvalidIdentifier,
    PermissionDenied,
    QueryRefused,
    SqlSyntaxError,
    TsunamiError,
)
from servicetsunami.sql import GuardedQuery, TableReference, guard_query
from servicetsunami.tenancy import TableRef

CATALOG = "tenant_a"

READ_ONLY = "read-only"
TABLE_FUNCTIONS = "table functions are not allowed"
FILE_PATHS = "file paths are not allowed"
NOT_ALLOWED = "is not allowed"
MULTIPLE = "multiple statements"
NOT_YOURS = "is not yours"
METADATA = "list_tables"

# (statement, error class, a word the message must contain)
REFUSALS: list[tuple[str, type[TsunamiError], str]] = [
    # files and table functions
    ("SELECT * FROM read_csv('/etc/passwd')", QueryRefused, TABLE_FUNCTIONS),
    ("SELECT * FROM read_csv_auto('x.csv')", QueryRefused, TABLE_FUNCTIONS),
    ("SELECT * FROM read_parquet('x')", QueryRefused, TABLE_FUNCTIONS),
    ("SELECT * FROM read_json_auto('x.json')", QueryRefused, TABLE_FUNCTIONS),
    ("SELECT * FROM read_files('/Volumes/x')", QueryRefused, TABLE_FUNCTIONS),
    ("SELECT * FROM glob('/*')", QueryRefused, NOT_ALLOWED),
    ("SELECT * FROM delta_scan('/data/t')", QueryRefused, TABLE_FUNCTIONS),
    ("SELECT * FROM parquet_scan('x')", QueryRefused, TABLE_FUNCTIONS),
    ("SELECT * FROM iceberg_scan('x')", QueryRefused, TABLE_FUNCTIONS),
    ("SELECT * FROM sqlite_scan('x.db', 't')", QueryRefused, TABLE_FUNCTIONS),
    ("SELECT * FROM query('SELECT 1')", QueryRefused, TABLE_FUNCTIONS),
    ("SELECT * FROM explode(array(1, 2))", QueryRefused, "LATERAL VIEW"),
    ("SELECT * FROM table_changes('orders', 1)", QueryRefused, TABLE_FUNCTIONS),
    ("SELECT * FROM IDENTIFIER('tenant_b.bronze.orders')", QueryRefused, TABLE_FUNCTIONS),
    ("SELECT IDENTIFIER('amount') FROM orders", QueryRefused, "IDENTIFIER"),
    ("SELECT * FROM STREAM(orders)", QueryRefused, "STREAM"),
    ("SELECT * FROM t LATERAL VIEW json_tuple(j, 'a') x AS a", QueryRefused, "LATERAL VIEW"),
    ("SELECT read_text('/etc/passwd')", QueryRefused, NOT_ALLOWED),
    ("SELECT content FROM orders WHERE id IN (SELECT 1 FROM read_blob('x'))", QueryRefused, TABLE_FUNCTIONS),
    ("SELECT * FROM parquet.`/etc/passwd`", QueryRefused, FILE_PATHS),
    ("SELECT * FROM csv.`file:///x`", QueryRefused, FILE_PATHS),
    ("SELECT * FROM delta.`s3://bucket/table`", QueryRefused, FILE_PATHS),
    ("SELECT * FROM json.`events`", QueryRefused, FILE_PATHS),
    ("SELECT * FROM `../other_tenant/t`", QueryRefused, FILE_PATHS),
    ("SELECT * FROM 'data.csv'", QueryRefused, FILE_PATHS),
    # engine, environment and secrets
    ("SELECT getenv('HOME')", QueryRefused, "getenv"),
    ("SELECT current_setting('allowed_directories')", QueryRefused, "current_setting"),
    ("SELECT * FROM duckdb_settings()", QueryRefused, TABLE_FUNCTIONS),
    ("SELECT duckdb_extensions()", QueryRefused, "duckdb_extensions"),
    ("SELECT pragma_version()", QueryRefused, NOT_ALLOWED),
    ("SELECT secret('scope', 'key')", QueryRefused, "secret"),
    ("SELECT reflect('java.lang.System', 'exit', 0)", QueryRefused, "reflect"),
    ("SELECT other.udfs.leak(1)", QueryRefused, "qualified"),
    # statements that write or change the session
    ("ATTACH '/tmp/x.db' AS x", QueryRefused, READ_ONLY),
    ("DETACH x", QueryRefused, READ_ONLY),
    ("COPY orders TO '/tmp/out.csv'", QueryRefused, READ_ONLY),
    ("COPY INTO orders FROM '/tmp/in'", QueryRefused, READ_ONLY),
    ("INSTALL httpfs", QueryRefused, READ_ONLY),
    ("LOAD httpfs", QueryRefused, READ_ONLY),
    ("SET enable_external_access = true", QueryRefused, READ_ONLY),
    ("RESET ALL", QueryRefused, READ_ONLY),
    ("PRAGMA database_list", QueryRefused, READ_ONLY),
    ("CALL duckdb_secrets()", QueryRefused, READ_ONLY),
    ("USE other", QueryRefused, READ_ONLY),
    ("INSERT INTO orders VALUES (1)", QueryRefused, READ_ONLY),
    ("UPDATE orders SET amount = 0", QueryRefused, READ_ONLY),
    ("DELETE FROM orders", QueryRefused, READ_ONLY),
    ("MERGE INTO orders t USING updates s ON t.id = s.id WHEN MATCHED THEN DELETE", QueryRefused, READ_ONLY),
    ("CREATE TABLE x (a INT)", QueryRefused, READ_ONLY),
    ("CREATE VIEW v AS SELECT * FROM orders", QueryRefused, READ_ONLY),
    ("CREATE TABLE x AS SELECT * FROM orders", QueryRefused, READ_ONLY),
    ("DROP TABLE orders", QueryRefused, READ_ONLY),
    ("ALTER TABLE orders ADD COLUMN x INT", QueryRefused, READ_ONLY),
    ("TRUNCATE TABLE orders", QueryRefused, READ_ONLY),
    ("GRANT SELECT ON orders TO `someone`", QueryRefused, READ_ONLY),
    ("OPTIMIZE orders", QueryRefused, READ_ONLY),
    ("VACUUM orders", QueryRefused, READ_ONLY),
    ("EXPORT DATABASE '/tmp/x'", QueryRefused, READ_ONLY),
    ("SELECT * INTO copy_of_orders FROM orders", QueryRefused, READ_ONLY),
    ("WITH gone AS (DELETE FROM orders) SELECT * FROM gone", QueryRefused, READ_ONLY),
    ("EXPLAIN DROP TABLE orders", QueryRefused, "EXPLAIN"),
    ("DESCRIBE HISTORY orders", QueryRefused, "DESCRIBE"),
    ("SHOW TABLES LIKE 'x*'", QueryRefused, "SHOW"),
    ("SHOW GRANTS", QueryRefused, "SHOW"),
    # more than one statement, or none
    ("SELECT 1; SELECT 2", QueryRefused, MULTIPLE),
    ("SELECT 1; DROP TABLE x", QueryRefused, MULTIPLE),
    ("EXPLAIN SELECT 1; DROP TABLE x", QueryRefused, MULTIPLE),
    ("SHOW TABLES; DROP TABLE x", QueryRefused, MULTIPLE),
    ("", QueryRefused, "empty"),
    ("  ;  ", QueryRefused, "empty"),
    ("-- nothing but a comment", QueryRefused, "empty"),
    # other catalogs, wherever they hide
    ("SELECT * FROM tenant_b.bronze.orders", PermissionDenied, NOT_YOURS),
    (
        "SELECT * FROM orders o JOIN tenant_b.bronze.customers c ON o.customer_id = c.id",
        PermissionDenied,
        NOT_YOURS,
    ),
    ("SELECT * FROM (SELECT * FROM tenant_b.bronze.orders) s", PermissionDenied, NOT_YOURS),
    ("SELECT * FROM orders WHERE id IN (SELECT id FROM tenant_b.bronze.orders)", PermissionDenied, NOT_YOURS),
    ("SELECT * FROM orders WHERE EXISTS (SELECT 1 FROM tenant_b.s.t)", PermissionDenied, NOT_YOURS),
    ("WITH x AS (SELECT * FROM tenant_b.bronze.orders) SELECT * FROM x", PermissionDenied, NOT_YOURS),
    ("SELECT (SELECT max(id) FROM tenant_b.bronze.orders) AS m", PermissionDenied, NOT_YOURS),
    ("SELECT * FROM orders UNION ALL SELECT * FROM tenant_b.bronze.orders", PermissionDenied, NOT_YOURS),
    ("DESCRIBE tenant_b.bronze.orders", PermissionDenied, NOT_YOURS),
    ("SHOW TABLES IN tenant_b.bronze", PermissionDenied, NOT_YOURS),
    ("SHOW COLUMNS IN tenant_b.bronze.orders", PermissionDenied, NOT_YOURS),
    # catalog metadata
    ("SELECT * FROM information_schema.tables", QueryRefused, METADATA),
    ("SELECT * FROM tenant_a.information_schema.columns", QueryRefused, METADATA),
    ("SELECT * FROM system.access.audit", QueryRefused, METADATA),
    # names and time travel
    ("SELECT * FROM a.b.c.d", InvalidIdentifier, "catalog.schema.table"),
    ("SELECT * FROM `Bad-Name`", InvalidIdentifier, "not valid"),
    ("SELECT * FROM orders TIMESTAMP AS OF current_timestamp()", QueryRefused, "TIMESTAMP AS OF"),
    ("SELECT * FROM orders VERSION AS OF 'latest'", QueryRefused, "VERSION AS OF"),
    ("SELECT * FROM orders@v3", QueryRefused, "VERSION AS OF"),
]


@pytest.mark.parametrize(("sql", "error", "keyword"), REFUSALS, ids=[r[0][:60] for r in REFUSALS])
def test_guard_refuses_with_a_short_human_reason(sql: str, error: type[TsunamiError], keyword: str) -> None:
    with pytest.raises(TsunamiError) as info:
        guard_query(sql, catalog=CATALOG)
    assert info.value.code == error.code
    assert isinstance(info.value, error)
    message = str(info.value)
    assert keyword in message
    assert len(message) < 200
    assert "\n" not in message and "Traceback" not in message


def test_refusal_list_covers_at_least_forty_statements() -> None:
    assert len(REFUSALS) >= 40


def test_unparsable_sql_is_a_syntax_error_that_says_where() -> None:
    with pytest.raises(SqlSyntaxError) as info:
        guard_query("SELECT * FRM orders WHERE", catalog=CATALOG)
    assert info.value.code == "sql_syntax_error"
    assert "line 1, column" in str(info.value)


@pytest.mark.parametrize(
    ("sql", "line", "column", "guess"),
    [("slect 1", 1, 1, "SELECT"), ("\n  SELEC * FROM t", 2, 3, "SELECT"), ("frobnicate 2", 1, 1, None)],
)
def test_a_mistyped_first_word_is_a_syntax_error_with_its_position_and_a_guess(
    sql: str, line: int, column: int, guess: str | None
) -> None:
    with pytest.raises(SqlSyntaxError) as info:
        guard_query(sql, catalog=CATALOG)
    assert info.value.code == "sql_syntax_error"
    assert info.value.details == {"line": line, "column": column}
    assert (f"did you mean {guess}" in info.value.message) == (guess is not None)


@pytest.mark.parametrize("sql", ["INSERT INTO t VALUES (1)", "ATTACH 'x.db'", "OPTIMIZE t", "SET a = 1"])
def test_statements_that_write_stay_refused_as_not_read_only(sql: str) -> None:
    with pytest.raises(QueryRefused) as info:
        guard_query(sql, catalog=CATALOG)
    assert info.value.code == "query_refused"


def test_unterminated_string_is_a_syntax_error() -> None:
    with pytest.raises(SqlSyntaxError):
        guard_query("SELECT 'abc", catalog=CATALOG)


def ref(schema: str, name: str, *, version: int | None = None, timestamp: str | None = None) -> TableReference:
    return TableReference(TableRef(CATALOG, schema, name), version, timestamp)


def test_bare_table_name_is_qualified_with_the_catalog_and_default_schema() -> None:
    guarded = guard_query("select * from orders", catalog=CATALOG)
    assert guarded.kind == "select"
    assert guarded.tables == (ref("bronze", "orders"),)
    assert guarded.sql == "SELECT * FROM tenant_a.bronze.orders"


def test_schema_qualified_and_own_catalog_names_resolve_inside_the_catalog() -> None:
    guarded = guard_query(
        "SELECT * FROM silver.customers c JOIN tenant_a.gold.daily d ON c.id = d.customer_id",
        catalog=CATALOG,
    )
    assert guarded.tables == (ref("silver", "customers"), ref("gold", "daily"))


def test_default_schema_can_be_chosen_by_the_caller() -> None:
    guarded = guard_query("SELECT * FROM orders", catalog=CATALOG, default_schema="silver")
    assert guarded.tables == (ref("silver", "orders"),)


def test_names_are_case_insensitive_and_may_be_backticked() -> None:
    guarded = guard_query("SELECT * FROM `Tenant_A`.Silver.`ORDERS`", catalog=CATALOG)
    assert guarded.tables == (ref("silver", "orders"),)


def test_every_table_in_the_statement_is_qualified_in_the_ast() -> None:
    guarded = guard_query(
        "SELECT id, (SELECT max(amount) FROM orders) FROM customers c "
        "WHERE c.id IN (SELECT customer_id FROM silver.orders) "
        "AND EXISTS (SELECT 1 FROM refunds r WHERE r.customer_id = c.id)",
        catalog=CATALOG,
    )
    tables = list(guarded.statement.find_all(exp.Table))
    assert tables and all(t.catalog == CATALOG for t in tables)
    assert guarded.tables == (
        ref("bronze", "orders"),
        ref("bronze", "customers"),
        ref("silver", "orders"),
        ref("bronze", "refunds"),
    )


def test_tables_are_deduplicated_in_order_of_appearance() -> None:
    guarded = guard_query(
        "SELECT * FROM b JOIN a ON a.id = b.id WHERE EXISTS (SELECT 1 FROM b) AND a.x IN (SELECT x FROM c)",
        catalog=CATALOG,
    )
    assert [t.table.name for t in guarded.tables] == ["b", "a", "c"]


def test_cte_names_are_not_qualified_and_not_listed_as_tables() -> None:
    guarded = guard_query(
        "WITH paid AS (SELECT * FROM orders WHERE status = 'paid'), big AS (SELECT * FROM paid) "
        "SELECT * FROM big JOIN paid USING (id)",
        catalog=CATALOG,
    )
    assert guarded.tables == (ref("bronze", "orders"),)
    assert "FROM big JOIN paid" in guarded.sql


def test_a_cte_shadows_a_table_of_the_same_name() -> None:
    guarded = guard_query("WITH orders AS (SELECT 1 AS id) SELECT * FROM orders", catalog=CATALOG)
    assert guarded.tables == ()


def test_a_cte_is_visible_only_inside_its_own_query() -> None:
    guarded = guard_query("SELECT * FROM (WITH x AS (SELECT 1 AS a) SELECT * FROM x) s, x", catalog=CATALOG)
    assert guarded.tables == (ref("bronze", "x"),)


def test_recursive_cte_may_refer_to_itself() -> None:
    guarded = guard_query(
        "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r",
        catalog=CATALOG,
    )
    assert guarded.tables == ()


def test_version_as_of_is_captured() -> None:
    guarded = guard_query("SELECT * FROM orders VERSION AS OF 3 AS o", catalog=CATALOG)
    assert guarded.tables == (ref("bronze", "orders", version=3),)


def test_timestamp_as_of_is_captured_as_the_literal_text() -> None:
    guarded = guard_query("SELECT * FROM orders TIMESTAMP AS OF '2024-01-01 10:00:00'", catalog=CATALOG)
    assert guarded.tables == (ref("bronze", "orders", timestamp="2024-01-01 10:00:00"),)


def test_two_versions_of_one_table_are_two_references() -> None:
    guarded = guard_query(
        "SELECT * FROM orders VERSION AS OF 1 a JOIN orders VERSION AS OF 2 b ON a.id = b.id", catalog=CATALOG
    )
    assert guarded.tables == (ref("bronze", "orders", version=1), ref("bronze", "orders", version=2))


def test_read_only_forms_are_accepted() -> None:
    for sql in (
        "VALUES (1, 'a'), (2, 'b')",
        "SELECT 1;",
        "(SELECT 1) UNION ALL (SELECT 2)",
        "SELECT * FROM range(10)",
        "SELECT o.id, tag FROM orders o LATERAL VIEW OUTER explode(o.tags) t AS tag",
        "SELECT ';' AS semicolon, 'DROP TABLE x' AS text -- ; DROP TABLE y",
        "SELECT /*+ BROADCAST(c) */ * FROM orders o JOIN customers c ON o.customer_id = c.id",
    ):
        assert guard_query(sql, catalog=CATALOG).kind == "select"


def test_explain_wraps_a_guarded_query() -> None:
    guarded = guard_query("EXPLAIN EXTENDED SELECT * FROM tenant_b_lookalike", catalog=CATALOG)
    assert guarded.kind == "explain"
    assert guarded.tables == (ref("bronze", "tenant_b_lookalike"),)
    assert guarded.sql == "EXPLAIN SELECT * FROM tenant_a.bronze.tenant_b_lookalike"


@pytest.mark.parametrize(
    ("sql", "target"),
    [
        ("DESCRIBE orders", TableRef(CATALOG, "bronze", "orders")),
        ("DESC TABLE silver.orders", TableRef(CATALOG, "silver", "orders")),
        ("DESCRIBE TABLE EXTENDED tenant_a.gold.daily;", TableRef(CATALOG, "gold", "daily")),
    ],
)
def test_describe_names_its_target(sql: str, target: TableRef) -> None:
    guarded = guard_query(sql, catalog=CATALOG)
    assert guarded.kind == "describe"
    assert guarded.target == target
    assert str(target) in guarded.sql


@pytest.mark.parametrize(
    ("sql", "schema"),
    [
        ("SHOW TABLES", None),
        ("show tables in silver", "silver"),
        ("SHOW TABLES FROM tenant_a.gold;", "gold"),
    ],
)
def test_show_tables_names_its_schema(sql: str, schema: str | None) -> None:
    guarded = guard_query(sql, catalog=CATALOG)
    assert guarded.kind == "show_tables"
    assert guarded.schema == schema
    assert guarded.tables == ()


def test_show_schemas_and_databases_are_the_same_statement() -> None:
    assert guard_query("SHOW SCHEMAS", catalog=CATALOG).kind == "show_schemas"
    assert guard_query("show databases in tenant_a", catalog=CATALOG).kind == "show_schemas"


@pytest.mark.parametrize(
    ("sql", "target"),
    [
        ("SHOW COLUMNS IN orders", TableRef(CATALOG, "bronze", "orders")),
        ("SHOW COLUMNS FROM silver.orders", TableRef(CATALOG, "silver", "orders")),
        ("SHOW COLUMNS IN orders IN gold", TableRef(CATALOG, "gold", "orders")),
    ],
)
def test_show_columns_names_its_target(sql: str, target: TableRef) -> None:
    guarded = guard_query(sql, catalog=CATALOG)
    assert guarded.kind == "show_columns"
    assert guarded.target == target


def test_rendered_sql_is_qualified_and_passes_the_guard_again() -> None:
    first = guard_query(
        "WITH p AS (SELECT * FROM orders VERSION AS OF 2 WHERE status = 'paid') "
        "SELECT c.name, count(*) FROM p JOIN silver.customers c ON p.customer_id = c.id GROUP BY c.name",
        catalog=CATALOG,
    )
    again = guard_query(first.sql, catalog=CATALOG)
    assert isinstance(again, GuardedQuery)
    assert again.tables == first.tables
    assert again.sql == first.sql


@pytest.mark.parametrize("sql", ["select * from", "select 1 +", "select * from t where", "select (1"])
def test_syntax_errors_are_described_in_words_without_parser_internals(sql: str) -> None:
    with pytest.raises(SqlSyntaxError) as info:
        guard_query(sql, catalog="tenant_a")
    message = info.value.message
    assert "line 1" in message
    assert "<Token" not in message and "<class" not in message and "TokenType" not in message
