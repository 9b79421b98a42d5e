"""Relationships between tables backed by the data, not by names alone.

A column ``a.c`` joins ``b.k`` when ``b.k`` is unique and non-null in ``b`` (a key), and nearly all
distinct non-null values of ``a.c`` occur in ``b.k`` (:data:`MIN_OVERLAP`). Names only propose the
candidates worth checking (``customer_id`` beside a table ``customers`` with ``id``, or the same
column name on both sides); two ``order_id`` columns that are keys of neither table, or whose values
do not meet, are not a relationship.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from servicetsunami.errors import TsunamiError
from servicetsunami.services.catalog.query import query_sql
from servicetsunami.tenancy import Principal

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

#: Share of a column's distinct values that must exist in the key it joins.
MIN_OVERLAP = 0.8
_ID_TYPES = ("INT", "BIGINT", "SMALLINT", "TINYINT", "STRING", "DECIMAL")

Columns = dict[str, list[tuple[str, str]]]  # "schema.table" -> [(column, type)]


@dataclass(frozen=True)
class Join:
    """``table.column`` refers to ``key_table.key`` (a unique key), as the data shows."""

    table: str
    column: str
    key_table: str
    key: str
    overlap: float  # share of the column's distinct values found in the key

    def __str__(self) -> str:
        return f"{self.table}.{self.column} -> {self.key_table}.{self.key} ({self.overlap:.0%} of values match)"


def singular(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ses", "xes")):
        return word[:-2]
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def candidates(tables: Columns) -> list[tuple[str, str, str, str]]:
    """(table, column, key_table, key) pairs whose names suggest a join."""
    found = []
    for key_table, key_columns in tables.items():
        stem = singular(key_table.split(".", 1)[1])
        key_names = {c for c, t in key_columns if t.upper().startswith(_ID_TYPES)}
        for table, columns in tables.items():
            if table == key_table:
                continue
            for column, type_name in columns:
                if not type_name.upper().startswith(_ID_TYPES):
                    continue
                if column in (f"{stem}_id", f"{stem}id") and "id" in key_names:
                    found.append((table, column, key_table, "id"))
                elif column in key_names and (column.endswith("_id") or column == f"{stem}_key"):
                    found.append((table, column, key_table, column))
    return found


def is_key(svc: Services, principal: Principal, table: str, column: str) -> bool:
    """Whether ``column`` is unique and never NULL in ``table``."""
    sql = f"SELECT count(*) = count(DISTINCT `{column}`) AND count(`{column}`) = count(*) AS k FROM {table}"
    rows = _rows(svc, principal, sql)
    return bool(rows and rows[0][0])


def overlap(svc: Services, principal: Principal, table: str, column: str, key_table: str, key: str) -> float:
    """Share of the distinct non-null values of ``table.column`` that occur in ``key_table.key``."""
    sql = (
        f"SELECT count(*) AS n, count(k.`{key}`) AS found FROM (SELECT DISTINCT `{column}` AS v FROM {table} "
        f"WHERE `{column}` IS NOT NULL) AS a LEFT JOIN (SELECT DISTINCT `{key}` FROM {key_table}) AS k "
        f"ON a.v = k.`{key}`"
    )
    rows = _rows(svc, principal, sql)
    total, found = (rows[0][0], rows[0][1]) if rows else (0, 0)
    if not isinstance(total, int) or not isinstance(found, int) or total == 0:
        return 0.0
    return found / total


def joins(svc: Services, principal: Principal, tables: Columns) -> list[Join]:
    """The relationships among ``tables`` that the data confirms."""
    out = []
    keys: dict[tuple[str, str], bool] = {}
    tables = {t: [(c, ty) for c, ty in cols if "`" not in c] for t, cols in tables.items()}  # quoted with backticks
    for table, column, key_table, key in candidates(tables):
        if (key_table, key) not in keys:
            keys[(key_table, key)] = is_key(svc, principal, key_table, key)
        if not keys[(key_table, key)]:
            continue
        share = overlap(svc, principal, table, column, key_table, key)
        if share >= MIN_OVERLAP:
            out.append(Join(table, column, key_table, key, round(share, 4)))
    return out


def _rows(svc: Services, principal: Principal, sql: str) -> list[list[object]]:
    try:
        return query_sql(svc, principal, sql, max_rows=1000).rows
    except TsunamiError:
        return []  # a column the engine cannot compare is no evidence
