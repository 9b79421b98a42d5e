"""Column lineage that fails closed: each output column's table columns, or None when not proven."""

from __future__ import annotations

import pytest

from servicetsunami.sql import guard_query
from servicetsunami.sql.columns import output_sources

CATALOG = "tenant_acme"
SCHEMAS = {
    "bronze": {
        "people": {"id": "BIGINT", "email": "STRING", "name": "STRING", "city": "STRING"},
        "orders": {"id": "BIGINT", "person_id": "BIGINT", "amount": "DOUBLE"},
    }
}
EMAIL = ("bronze.people", "email")
NAME = ("bronze.people", "name")
CITY = ("bronze.people", "city")
PID = ("bronze.people", "id")
AMOUNT = ("bronze.orders", "amount")


def sources(sql: str, outputs: int) -> list[set[tuple[str, str]] | None]:
    statement = guard_query(sql, catalog=CATALOG).statement
    found = output_sources(statement, catalog=CATALOG, schemas=SCHEMAS, outputs=outputs)
    return [None if s is None else set(s) for s in found]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT concat(email, '!') AS a, id FROM people", [{EMAIL}, {PID}]),
        ("SELECT split(email, '@')[0] FROM people", [{EMAIL}]),
        ("SELECT to_json(named_struct('e', email)) FROM people", [{EMAIL}]),
        ("SELECT concat_ws(',', collect_list(email)), count(*) FROM people", [{EMAIL}, set()]),
        ("SELECT x, id FROM people LATERAL VIEW explode(array(reverse(email))) t AS x", [{EMAIL}, {PID}]),
        ("SELECT city FROM people UNION ALL SELECT email FROM people", [{CITY, EMAIL}]),
        ("WITH a AS (SELECT email AS z, id FROM people) SELECT upper(z), id FROM a", [{EMAIL}, {PID}]),
        ("SELECT s.e FROM (SELECT named_struct('e', email) AS s FROM people)", [{EMAIL}]),
        ("SELECT (SELECT max(name) FROM people) AS m", [{NAME}]),
        ("SELECT row_number() OVER (PARTITION BY email ORDER BY id) AS r FROM people", [{EMAIL, PID}]),
        ("SELECT CASE WHEN id > 1 THEN name END AS n FROM people", [{PID, NAME}]),
        ("SELECT transform(array(email), v -> upper(v)) AS t FROM people", [{EMAIL}]),
        ("SELECT x.c FROM people, LATERAL (SELECT explode(array(email)) AS c) x", [{EMAIL}]),
        (
            "SELECT p.city, o.amount FROM people p JOIN orders o ON p.id = o.person_id",
            [{CITY}, {AMOUNT}],
        ),
        ("SELECT 1 AS one, 'a@b.c' AS lit FROM people", [set(), set()]),
        ("SELECT id FROM people WHERE email IN (SELECT email FROM people)", [{PID}]),
    ],
)
def test_each_output_column_is_traced_to_the_table_columns_it_is_computed_from(
    sql: str, expected: list[set[tuple[str, str]]]
) -> None:
    assert sources(sql, len(expected)) == expected


def test_a_star_is_expanded_with_the_tables_columns() -> None:
    assert sources("SELECT * FROM people", 4) == [{PID}, {EMAIL}, {NAME}, {CITY}]


@pytest.mark.parametrize(
    ("sql", "outputs"),
    [
        ("SELECT posexplode(array(email)) FROM people", 2),  # one expression, two columns
        ("SELECT * FROM unknown_table", 3),  # no schema: the star cannot be expanded
        ("SELECT id FROM people", 2),  # the engine returned another number of columns
    ],
)
def test_what_cannot_be_proven_is_none_for_every_column(sql: str, outputs: int) -> None:
    assert sources(sql, outputs) == [None] * outputs


def test_the_same_statement_is_traced_once_and_answers_alike() -> None:
    statement = guard_query("SELECT reverse(email) FROM people", catalog=CATALOG).statement
    first = output_sources(statement, catalog=CATALOG, schemas=SCHEMAS, outputs=1)
    again = output_sources(statement, catalog=CATALOG, schemas=SCHEMAS, outputs=1)
    other = {"bronze": {"people": {"id": "BIGINT", "email": "STRING"}}}
    assert first == again == [frozenset({EMAIL})]
    assert output_sources(statement, catalog=CATALOG, schemas=other, outputs=1) == [frozenset({EMAIL})]
