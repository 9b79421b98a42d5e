"""Unnamed result columns are named as Databricks names them."""

from __future__ import annotations

import duckdb
import pytest
import sqlglot

from servicetsunami.sql import guard_query, to_duckdb
from servicetsunami.sql.naming import spark_column_name


@pytest.mark.parametrize(
    ("projection", "name"),
    [
        ("count(*)", "count(1)"),
        ("count(DISTINCT status)", "count(DISTINCT status)"),
        ("upper(name)", "upper(name)"),
        ("coalesce(email, 'none')", "coalesce(email, none)"),
        ("dayofweek(DATE'2024-01-05')", "dayofweek(DATE '2024-01-05')"),
        ("id + 1", "(id + 1)"),
        ("id > 1 AND id < 4", "((id > 1) AND (id < 4))"),
        ("NOT vip", "(NOT vip)"),
        ("-quantity", "(- quantity)"),
        ("if(id > 2, 'a', 'b')", "(IF((id > 2), a, b))"),
        ("attrs['channel']", "attrs[channel]"),
        ("CAST(id AS STRING)", "id"),
        ("datediff(DATE'2024-12-31', d)", "datediff(DATE '2024-12-31', d)"),
    ],
)
def test_an_unnamed_projection_gets_sparks_name(projection: str, name: str) -> None:
    select = sqlglot.parse_one(f"SELECT {projection} FROM t", read="databricks")
    assert spark_column_name(select.expressions[0]) == name


def test_a_window_or_a_plain_column_keeps_the_engines_name() -> None:
    select = sqlglot.parse_one("SELECT id, row_number() OVER (ORDER BY id) FROM t", read="databricks")
    assert [spark_column_name(e) for e in select.expressions] == [None, None]


def test_count_star_comes_back_as_count_1_on_the_local_engine() -> None:
    guarded = guard_query("SELECT count(*), status FROM orders GROUP BY status", catalog="tenant_a")
    sql = to_duckdb(guarded, resolve=lambda ref: "(SELECT 'paid' AS status)")
    names = [c[0] for c in duckdb.connect().sql(sql).description]
    assert names == ["count(1)", "status"]
