"""Questions answered without a model: the common shapes, or a plain "cannot".

:func:`plan` turns a question into Databricks SQL when every content word of the question is
accounted for by a table, a column, a value found in the data, a time grain or the small vocabulary
of the shapes below; otherwise it says which words it could not place. The shapes:

- an aggregate by a time grain: "total amount per month", "orders per week";
- top N by a measure: "which customer spent the most?", "top 3 skus by quantity";
- an aggregate per a column: "average score by country";
- a filter by a value: "how many orders are refunded", "paid orders";
- a count of distinct values: "how many distinct customers ordered";
- a plain count or total: "how many orders", "total amount".

Joins come only from relationships the data confirms (:mod:`.evidence`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlglot import exp

from servicetsunami.errors import TsunamiError
from servicetsunami.services.ai.evidence import Columns, Join, joins, singular
from servicetsunami.services.catalog.query import query_sql
from servicetsunami.tenancy import Principal

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

_WORD_RE = re.compile(r"[a-z0-9]+")
_GRAINS = {
    "day": "DAY", "daily": "DAY", "days": "DAY", "week": "WEEK", "weekly": "WEEK", "weeks": "WEEK",
    "month": "MONTH", "monthly": "MONTH", "months": "MONTH", "quarter": "QUARTER", "quarterly": "QUARTER",
    "quarters": "QUARTER", "year": "YEAR", "yearly": "YEAR", "annual": "YEAR", "years": "YEAR",
}  # fmt: skip
_MONEY = ("amount", "revenue", "price", "total", "cost", "sales", "value", "spend")
_MONEY_WORDS = frozenset({"spent", "spend", "spending", "revenue", "sales", "money", "earned", "paid", "value"})
_QTY = ("qty", "quantity", "units")
_QTY_WORDS = frozenset({"quantity", "qty", "units", "sold", "bought"})
_AVG = frozenset({"average", "avg", "mean"})
_MAX_WORDS = frozenset({"max", "maximum", "largest", "biggest", "highest"})
_MIN_WORDS = frozenset({"min", "minimum", "smallest", "lowest"})
_COUNT = frozenset({"count", "many", "number"})
_DISTINCT = frozenset({"distinct", "unique", "different"})
_TOP = frozenset({"top", "most", "best", "highest", "largest", "biggest", "greatest"})
_BOTTOM = frozenset({"least", "fewest", "lowest", "smallest", "worst", "bottom"})
_FILLER = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "by",
        "for",
        "per",
        "to",
        "and",
        "or",
        "with",
        "what",
        "which",
        "who",
        "how",
        "is",
        "are",
        "was",
        "were",
        "show",
        "me",
        "list",
        "give",
        "all",
        "each",
        "every",
        "total",
        "sum",
        "has",
        "have",
        "had",
        "did",
        "do",
        "does",
        "there",
        "their",
        "its",
        "it",
        "that",
        "this",
        "these",
        "those",
        "from",
        "placed",
        "made",
        "ordered",
        "overall",
    ]  # a word list reads best as one string
)
_NUMERIC = ("INT", "BIGINT", "SMALLINT", "TINYINT", "DOUBLE", "FLOAT", "DECIMAL")
_TIME = ("DATE", "TIMESTAMP")
_SHAPE_WORDS = _COUNT | _DISTINCT | _AVG | _TOP | _BOTTOM | _MAX_WORDS | _MIN_WORDS
MAX_VALUES = 100  # distinct values of a text column looked at for filters


@dataclass
class Plan:
    sql: str | None
    explanation: str
    unplaced: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Filter:
    table: str
    column: str
    value: str | bool


def plan(svc: Services, principal: Principal, question: str, tables: Columns) -> Plan:
    """SQL for ``question`` over ``tables``, or a Plan without SQL that says why not."""
    words = _WORD_RE.findall(question.lower())
    shown: set[str] = set()
    unshadowed = {}
    for table, cols in tables.items():  # best first: silver.orders hides bronze.orders after it
        if table.split(".", 1)[1] not in shown:
            shown.add(table.split(".", 1)[1])
            unshadowed[table] = [(c, ty) for c, ty in cols if "`" not in c]  # quoted below with backticks
    tables = unshadowed
    used: set[str] = set()
    numbers = [int(words[i + 1]) for i, w in enumerate(words[:-1]) if w in ("top", "bottom") and words[i + 1].isdigit()]
    used |= {str(n) for n in numbers}  # other numbers (a year, an amount) are conditions we cannot place
    named = _named_tables(words, tables, used)
    columns = _named_columns(words, tables, used)
    filters = _value_filters(svc, principal, words, tables, used)
    filters += [_Filter(t, c, True) for t, c, ty in columns if ty.upper() == "BOOLEAN"]
    grain = next((_GRAINS[w] for w in words if w in _GRAINS), None)
    used |= {w for w in words if w in _GRAINS}
    vocabulary = _FILLER | _AVG | _COUNT | _DISTINCT | _TOP | _BOTTOM | _MONEY_WORDS | _QTY_WORDS
    vocabulary |= _MAX_WORDS | _MIN_WORDS
    unplaced = [w for w in words if w not in used and w not in vocabulary and singular(w) not in vocabulary]
    if unplaced:
        return Plan(None, "cannot place these words in your tables: " + ", ".join(dict.fromkeys(unplaced)), unplaced)
    measure = _measure(words, columns, tables, named)
    agg = _aggregate(words)
    top = bool(_TOP & set(words) or _BOTTOM & set(words)) and ("which" in words or "who" in words or "top" in words)
    involved = {f.table for f in filters} | set(named) | {t for t, _, _ in columns}
    relations = joins(svc, principal, tables) if (top or len(involved) > 1) else []
    try:
        if top:
            return _top(words, numbers, named, columns, measure, agg, filters, relations, tables)
        if grain:
            return _by_grain(grain, named, columns, measure, agg, filters, tables)
        return _simple(words, named, columns, measure, agg, filters, relations, tables)
    except _Cannot as exc:
        return Plan(None, str(exc))


class _Cannot(Exception):
    pass


def _named_tables(words: list[str], tables: Columns, used: set[str]) -> list[str]:
    found: list[str] = []
    for table in tables:  # best first: of bronze.orders and silver.orders, the first one named
        name = table.split(".", 1)[1]
        if any(t.split(".", 1)[1] == name for t in found):
            continue
        forms = {name, singular(name), *name.split("_"), *(singular(p) for p in name.split("_"))}
        hits = [w for w in words if (w in forms or singular(w) in forms) and w not in _SHAPE_WORDS]
        if hits:
            found.append(table)
            used |= set(hits)
    return found


def _named_columns(words: list[str], tables: Columns, used: set[str]) -> list[tuple[str, str, str]]:
    """(table, column, type) for columns the question names (all words of the name, or its stem)."""
    found: list[tuple[str, str, str]] = []
    inferred: list[tuple[str, str, str]] = []
    for table, cols in tables.items():
        for column, type_name in cols:
            if column.startswith("_"):
                continue
            parts = column.lower().split("_")
            if all(p in words or p + "s" in words for p in parts):
                found.append((table, column, type_name))
                used |= {w for w in words if w in parts or singular(w) in parts}
            elif parts[-1] == "id" and parts[0] in {singular(w) for w in words}:
                inferred.append((table, column, type_name))  # "per customer": customer_id
    return found + [c for c in inferred if not found or c[0] in {t for t, _, _ in found}]


def _value_filters(
    svc: Services, principal: Principal, words: list[str], tables: Columns, used: set[str]
) -> list[_Filter]:
    found = []
    text = " ".join(words)
    for table, cols in tables.items():
        for column, type_name in cols:
            if type_name.upper() != "STRING" or column.startswith("_"):
                continue
            for value in _values(svc, principal, table, column):
                lowered = value.lower()
                if lowered and re.search(rf"\b{re.escape(lowered)}\b", text) and lowered not in _FILLER:
                    found.append(_Filter(table, column, value))
                    used |= set(_WORD_RE.findall(lowered))
    return found


def _values(svc: Services, principal: Principal, table: str, column: str) -> list[str]:
    sql = f"SELECT DISTINCT `{column}` FROM {table} WHERE `{column}` IS NOT NULL LIMIT {MAX_VALUES + 1}"
    try:
        rows = query_sql(svc, principal, sql, max_rows=MAX_VALUES + 1).rows
    except TsunamiError:
        return []
    if len(rows) > MAX_VALUES:
        return []  # free text, not categories
    return [str(r[0]) for r in rows if isinstance(r[0], str) and len(r[0]) <= 40]


def _measure(
    words: list[str], columns: list[tuple[str, str, str]], tables: Columns, named: list[str]
) -> tuple[str, str] | None:
    numeric = [
        (t, c)
        for t, c, ty in columns
        if ty.upper().startswith(_NUMERIC) and not c.endswith("id") and c.lower() not in _GRAINS
    ]
    if numeric:
        return numeric[0]
    if _COUNT & set(words):
        return None  # "how many paid orders": a count, whatever money word names the rows
    wanted = _MONEY if _MONEY_WORDS & set(words) else _QTY if _QTY_WORDS & set(words) else None
    if wanted is None:
        return None
    for table in sorted(tables, key=lambda t: t not in named):
        for column, type_name in tables[table]:
            if type_name.upper().startswith(_NUMERIC) and any(w in column.lower() for w in wanted):
                return table, column
    return None


def _aggregate(words: list[str]) -> str:
    if _AVG & set(words):
        return "avg"
    if _MAX_WORDS & set(words) and not (_TOP & set(words) and ("which" in words or "who" in words)):
        return "max"
    if _MIN_WORDS & set(words) and not (_BOTTOM & set(words) and ("which" in words or "who" in words)):
        return "min"
    return "sum"


def _where(filters: list[_Filter], alias: dict[str, str] | None = None) -> str:
    if not filters:
        return ""
    parts = []
    for f in filters:
        prefix = f"{alias[f.table]}." if alias else ""
        value = str(f.value).lower() if isinstance(f.value, bool) else exp.Literal.string(f.value).sql("databricks")
        parts.append(f"{prefix}`{f.column}` = {value}")
    return " WHERE " + " AND ".join(parts)


def _base(named: list[str], measure: tuple[str, str] | None, filters: list[_Filter], tables: Columns) -> str:
    if measure:
        return measure[0]
    if len(named) == 1:
        return named[0]
    owners = {f.table for f in filters}
    if len(owners) == 1:
        return owners.pop()
    raise _Cannot("cannot tell which table the question is about; name the table")


def _join_path(base: str, others: set[str], relations: list[Join]) -> list[Join]:
    path = []
    for other in sorted(others - {base}):
        link = next((j for j in relations if {j.table, j.key_table} == {base, other}), None)
        if link is None:
            raise _Cannot(f"found no relationship in the data between {base} and {other}")
        path.append(link)
    return path


def _from(base: str, path: list[Join]) -> tuple[str, dict[str, str]]:
    alias = {base: "t0"}
    sql = f"{base} AS t0"
    for i, j in enumerate(path, start=1):
        other = j.key_table if j.table == base else j.table
        alias[other] = f"t{i}"
        sql += f" JOIN {other} AS t{i} ON {alias[j.table]}.`{j.column}` = {alias[j.key_table]}.`{j.key}`"
    return sql, alias


def _by_grain(
    grain: str,
    named: list[str],
    columns: list[tuple[str, str, str]],
    measure: tuple[str, str] | None,
    agg: str,
    filters: list[_Filter],
    tables: Columns,
) -> Plan:
    base = _base(named, measure, filters, tables)
    if any(f.table != base for f in filters):
        raise _Cannot("a time series with a filter on another table needs a model")
    value = f"{agg}(`{measure[1]}`) AS {agg}_{measure[1]}" if measure else "count(*) AS n"
    as_column = next((c for t, c, _ in columns if t == base and c.lower() == grain.lower()), None)
    if as_column is not None:  # a table that keeps the period as a column (year, month)
        sql = f"SELECT `{as_column}`, {value} FROM {base}{_where(filters)} GROUP BY 1 ORDER BY 1"
        return Plan(sql, f"{value.split(' AS ')[0]} of {base} per {as_column}")
    times = [c for t, c, ty in columns if t == base and ty.upper().startswith(_TIME)]
    times = times or [c for c, ty in tables[base] if ty.upper().startswith(_TIME) and not c.startswith("_")]
    if not times:
        raise _Cannot(f"{base} has no date or timestamp column to group by {grain.lower()}")
    time = times[0]
    period = grain.lower()
    sql = (
        f"SELECT date_trunc('{grain}', `{time}`) AS {period}, {value} FROM {base}{_where(filters)} "
        f"GROUP BY 1 ORDER BY 1"
    )
    what = f"{agg} of {measure[1]}" if measure else "rows"
    return Plan(sql, f"{what} of {base} per {period} of {time}")


def _top(
    words: list[str],
    numbers: list[int],
    named: list[str],
    columns: list[tuple[str, str, str]],
    measure: tuple[str, str] | None,
    agg: str,
    filters: list[_Filter],
    relations: list[Join],
    tables: Columns,
) -> Plan:
    limit = numbers[0] if numbers and "top" in words else 1 if ("which" in words or "who" in words) else 10
    order = "ASC" if _BOTTOM & set(words) else "DESC"
    groups = [(t, c) for t, c, ty in columns if ty.upper() == "STRING" and (measure is None or (t, c) != measure)]
    entity = next((t for t in named if measure is None or t != measure[0]), None)
    if groups and (entity is None or groups[0][0] == (measure[0] if measure else groups[0][0])):
        table, column = groups[0]
        fact = measure[0] if measure else next((t for t in named if t != table), table)
        path = _join_path(fact, {table} | {f.table for f in filters}, relations)
        source, alias = _from(fact, path)
        value = f"{agg}({alias[fact]}.`{measure[1]}`)" if measure else "count(*)"
        sql = (
            f"SELECT {alias[table]}.`{column}`, {value} AS value FROM {source}{_where(filters, alias)} "
            f"GROUP BY {alias[table]}.`{column}` ORDER BY value {order} NULLS LAST LIMIT {limit}"
        )
        return Plan(sql, f"{column} ranked by {value.split('(')[0]} of {measure[1] if measure else 'rows'}")
    if entity is None and measure is not None:
        table = measure[0]
        sql = f"SELECT * FROM {table}{_where(filters)} ORDER BY `{measure[1]}` {order} NULLS LAST LIMIT {limit}"
        return Plan(sql, f"rows of {table} ranked by {measure[1]}")
    if entity is None:
        raise _Cannot("cannot tell what to rank; name the table or the column")
    ranked_by = measure[0] if measure else next((t for t in named if t != entity), None)
    if ranked_by is None:
        raise _Cannot(f"cannot tell what to rank {entity} by; name a measure")
    fact = ranked_by
    path = _join_path(fact, {entity} | {f.table for f in filters}, relations)
    source, alias = _from(fact, path)
    key = next(j.key if j.key_table == entity else j.column for j in path if entity in (j.table, j.key_table))
    label = [c for c, ty in tables[entity] if ty.upper() == "STRING" and "name" in c.lower()][:1]
    keys = ", ".join(f"{alias[entity]}.`{c}`" for c in [key, *label])
    value = f"{agg}({alias[fact]}.`{measure[1]}`)" if measure else "count(*)"
    sql = (
        f"SELECT {keys}, {value} AS value FROM {source}{_where(filters, alias)} GROUP BY {keys} "
        f"ORDER BY value {order} NULLS LAST LIMIT {limit}"
    )
    return Plan(sql, f"{entity} ranked by {value} over {fact}")


def _simple(
    words: list[str],
    named: list[str],
    columns: list[tuple[str, str, str]],
    measure: tuple[str, str] | None,
    agg: str,
    filters: list[_Filter],
    relations: list[Join],
    tables: Columns,
) -> Plan:
    distinct = None
    if _DISTINCT & set(words):
        distinct = next(((t, c) for t, c, _ in columns if (t, c) != measure), None)
        if distinct is None:
            raise _Cannot("cannot tell which column to count distinct values of")
        measure = None
    base = distinct[0] if distinct else _base(named, measure, filters, tables)
    path = _join_path(base, {f.table for f in filters}, relations)
    source, alias = _from(base, path)
    where = _where(filters, alias)
    groups = [(t, c) for t, c, ty in columns if ty.upper() != "BOOLEAN" and ("by" in words or "per" in words)]
    groups = [(t, c) for t, c in groups if (t, c) != measure and not any(f.column == c for f in filters)]
    if groups and measure and any(t != base for t, _ in groups):
        other = groups[0][0]
        kind = _QTY if any(w in measure[1].lower() for w in _QTY) else _MONEY
        alike = [c for c, ty in tables[other] if ty.upper().startswith(_NUMERIC) and any(w in c.lower() for w in kind)]
        if alike and all(t == other for t, _ in groups):  # "quantity per sku": the sku table's own quantity
            measure, base = (other, alike[0]), other
            source, alias = _from(base, _join_path(base, {f.table for f in filters}, relations))
            where = _where(filters, alias)
    groups = [(t, c) for t, c in groups if t == base] or groups
    if any(t != base for t, _ in groups):
        raise _Cannot("grouping by a column of another table than the measure's needs a model")
    if distinct is not None:
        target = distinct
        return Plan(
            f"SELECT count(DISTINCT t0.`{target[1]}`) AS n FROM {source}{where}", f"distinct {target[1]} in {base}"
        )
    if groups:
        column = groups[0][1]
        value = f"{agg}(t0.`{measure[1]}`)" if measure else "count(*)"
        sql = f"SELECT t0.`{column}`, {value} AS value FROM {source}{where} GROUP BY t0.`{column}` ORDER BY 1"
        return Plan(sql, f"{value} per {column} in {base}")
    if measure and not (_COUNT & set(words)):
        return Plan(f"SELECT {agg}(t0.`{measure[1]}`) AS value FROM {source}{where}", f"{agg} of {measure[1]}")
    if _COUNT & set(words):
        return Plan(f"SELECT count(*) AS n FROM {source}{where}", f"rows of {base}" + (" matching" if where else ""))
    if filters:
        return Plan(f"SELECT t0.* FROM {source}{where}", f"rows of {base} matching the values named")
    raise _Cannot("the question matches no shape answered without a model (a count, total, ranking or series)")
