"""The deterministic side of the AI tools: facts drawn from profiles and results, with no model.

They are what every answer stands on (a model only adds prose), and the whole answer when no model
path is available.
"""

from __future__ import annotations

import math
import re
import statistics
from typing import Any

from servicetsunami.services.governance.profiling import TableProfile
from servicetsunami.services.models import QueryResult

_MEANINGS: tuple[tuple[str, str], ...] = (
    (r"(^|_)id$", "identifier"),
    (r"_id$", "reference to another record"),
    (r"(_at|_time|timestamp)$", "when something happened"),
    (r"(date|day)$", "a calendar date"),
    (r"(amount|price|total|cost|revenue|sales|fee)", "a money amount"),
    (r"(qty|quantity|count|units|number)", "a count"),
    (r"(status|state|stage)$", "a status or lifecycle stage"),
    (r"(type|kind|category|segment|class)$", "a category"),
    (r"(region|country|city|state_code|zip|postcode)", "a place"),
    (r"(email|mail)", "an email address"),
    (r"(phone|mobile)", "a phone number"),
    (r"name$", "a name"),
    (r"^_ingested_at$", "when the row landed in bronze (lineage)"),
    (r"^_source$", "where the row came from (lineage)"),
    (r"^_sync_id$", "the upload or sync run that landed the row (lineage)"),
)
_WORD_RE = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an the of in on by for per to and or with what which how many much is are was were show me list give".split()  # noqa: SIM905  # a word list reads best as one string
)


def column_meaning(name: str, type_name: str) -> str:
    for pattern, meaning in _MEANINGS:
        if re.search(pattern, name):
            return meaning
    if type_name.upper().startswith(("INT", "BIGINT", "DOUBLE", "DECIMAL", "FLOAT", "SMALLINT")):
        return "a measure"
    if type_name.upper().startswith(("DATE", "TIMESTAMP")):
        return "a point in time"
    return "a descriptive attribute"


def quality_issues(profile: TableProfile) -> list[str]:
    issues = []
    for c in profile.columns:
        if c.name.startswith("_"):
            continue
        if profile.rows and c.null_share >= 0.2:
            issues.append(f"{c.name} is NULL in {c.null_share:.0%} of rows")
        if profile.rows > 1 and c.distinct == 1:
            issues.append(f"{c.name} holds a single value")
        if c.type == "STRING" and c.top_values and any(str(t.value) != str(t.value).strip() for t in c.top_values):
            issues.append(f"{c.name} has values with stray whitespace")
    if profile.rows and not profile.likely_keys:
        issues.append("no column is unique: there may be duplicate rows (dedupe in silver)")
    return issues


def relationships(profile: TableProfile, others: dict[str, list[str]]) -> list[str]:
    """Columns that likely join to other tables: ``x_id`` to a table named ``x``/``xs``, or a shared key."""
    found = []
    mine = {c.name for c in profile.columns if not c.name.startswith("_")}
    own = profile.table.split(".", 1)[1]
    for table, columns in others.items():
        name = table.split(".", 1)[1]
        if table == profile.table:
            continue
        for column in sorted(mine):
            stem = column[:-3] if column.endswith("_id") else None
            if stem and (name in (stem, stem + "s", stem + "es")) and ("id" in columns or column in columns):
                found.append(f"{profile.table}.{column} -> {table}.{'id' if 'id' in columns else column}")
            elif column in profile.likely_keys and (f"{own}_id" in columns or f"{own.rstrip('s')}_id" in columns):
                ref = f"{own}_id" if f"{own}_id" in columns else f"{own.rstrip('s')}_id"
                found.append(f"{table}.{ref} -> {profile.table}.{column}")
    return sorted(set(found))


def words(text: str) -> set[str]:
    return {w for w in _WORD_RE.findall(text.lower()) if w not in _STOP}


def score_table(question: set[str], table: str, columns: list[str], comment: str | None) -> float:
    name_words = words(table.replace("_", " "))
    column_words = {w for c in columns for w in words(c.replace("_", " "))}
    singular = {w.rstrip("s") for w in question}
    score = 3.0 * len((question | singular) & ({w.rstrip("s") for w in name_words} | name_words))
    score += len((question | singular) & column_words)
    if comment:
        score += 0.5 * len(question & words(comment))
    score += {"gold": 0.3, "silver": 0.2}.get(table.split(".", 1)[0], 0.0)
    return score


def deterministic_sql(question: str, table: str, columns: list[tuple[str, str]]) -> tuple[str, str]:
    """A template query for the question over one table, and what it does."""
    q = set(_WORD_RE.findall(question.lower()))
    numeric = [n for n, t in columns if t.upper().startswith(("INT", "BIGINT", "DOUBLE", "DECIMAL", "FLOAT"))]
    text = [n for n, t in columns if t.upper() == "STRING" and not n.startswith("_")]
    by = next((n for n in text + [n for n, _ in columns] if n in q or n.replace("_", " ") in question.lower()), None)
    measure = next((n for n in numeric if n in q or any(w in n for w in q)), numeric[0] if numeric else None)
    ident = "`{}`".format
    if {"count", "many", "number"} & q and not by:
        return f"SELECT COUNT(*) AS n FROM {table}", f"counts the rows of {table}"
    if by and measure and by != measure:
        agg = "AVG" if {"average", "avg", "mean"} & q else "SUM"
        return (
            f"SELECT {ident(by)}, {agg}({ident(measure)}) AS {agg.lower()}_{measure} FROM {table} "
            f"GROUP BY {ident(by)} ORDER BY 2 DESC LIMIT 100",
            f"{agg.lower()} of {measure} per {by} in {table}",
        )
    if by:
        return (
            f"SELECT {ident(by)}, COUNT(*) AS n FROM {table} GROUP BY {ident(by)} ORDER BY n DESC LIMIT 100",
            f"rows per {by} in {table}",
        )
    if measure and {"total", "sum", "average", "avg", "mean"} & q:
        agg = "AVG" if {"average", "avg", "mean"} & q else "SUM"
        return f"SELECT {agg}({ident(measure)}) AS value FROM {table}", f"{agg.lower()} of {measure} in {table}"
    return f"SELECT * FROM {table} LIMIT 20", f"the first rows of {table}"


def describe_result(result: QueryResult) -> dict[str, Any]:
    """Shape, per-column distributions, a trend and outliers of a (capped) result."""
    out: dict[str, Any] = {"rows": result.row_count, "columns": len(result.columns), "truncated": result.truncated}
    stats: dict[str, Any] = {}
    outliers: list[str] = []
    for i, column in enumerate(result.columns):
        values = [row[i] for row in result.rows if row[i] is not None]
        numbers = [float(v) for v in values if _is_number(v)]
        if values and len(numbers) == len(values) and column.type not in ("STRING", "DATE", "TIMESTAMP"):
            mean = statistics.fmean(numbers)
            spread = statistics.pstdev(numbers) if len(numbers) > 1 else 0.0
            stats[column.name] = {
                "min": min(numbers),
                "max": max(numbers),
                "mean": round(mean, 4),
                "nulls": result.row_count - len(values),
            }
            if spread > 0 and len(numbers) >= 5:
                far = [v for v in numbers if abs(v - mean) > 3 * spread]
                if far:
                    outliers.append(f"{column.name}: {len(far)} value(s) beyond 3 standard deviations, e.g. {far[0]:g}")
        else:
            counts: dict[str, int] = {}
            for v in values:
                counts[str(v)] = counts.get(str(v), 0) + 1
            top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
            stats[column.name] = {"distinct": len(counts), "top": top, "nulls": result.row_count - len(values)}
    out["stats"] = stats
    out["outliers"] = outliers
    out["trend"] = _trend(result)
    return out


def _is_number(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int | float):
        return math.isfinite(float(v))
    if isinstance(v, str):
        try:
            return math.isfinite(float(v))
        except ValueError:
            return False
    return False


def _axes(result: QueryResult) -> tuple[int, int, str] | None:
    """(dimension column, measure column, vega type of the dimension) when a chart helps."""
    if not 2 <= result.row_count <= 1000 or len(result.columns) < 2:
        return None
    kinds = [c.type.upper() for c in result.columns]
    measure = next(
        (i for i, k in enumerate(kinds) if k.startswith(("INT", "BIGINT", "DOUBLE", "DECIMAL", "FLOAT", "SMALLINT"))),
        None,
    )
    if measure is None:
        return None
    for i, k in enumerate(kinds):
        if i != measure and k.startswith(("DATE", "TIMESTAMP")):
            return i, measure, "temporal"
    for i, k in enumerate(kinds):
        if i != measure and k == "STRING":
            return i, measure, "nominal"
    return None


def _trend(result: QueryResult) -> str | None:
    axes = _axes(result)
    if axes is None or axes[2] != "temporal":
        return None
    dim, measure, _ = axes
    points = sorted(
        (row[dim], float(row[measure])) for row in result.rows if row[dim] is not None and _is_number(row[measure])
    )
    if len(points) < 3:
        return None
    first, last = points[0][1], points[-1][1]
    direction = "rises" if last > first else "falls" if last < first else "is flat"
    return f"{result.columns[measure].name} {direction} from {first:g} ({points[0][0]}) to {last:g} ({points[-1][0]})"


def vega_lite(result: QueryResult) -> dict[str, Any] | None:
    """A bar (categories) or line (time) chart of the first measure, when the result suits one."""
    axes = _axes(result)
    if axes is None:
        return None
    dim, measure, kind = axes
    x, y = result.columns[dim].name, result.columns[measure].name
    values = [{x: row[dim], y: float(row[measure]) if _is_number(row[measure]) else None} for row in result.rows]
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "data": {"values": values},
        "mark": "line" if kind == "temporal" else "bar",
        "encoding": {
            "x": {"field": x, "type": kind, **({"sort": "-y"} if kind == "nominal" else {})},
            "y": {"field": y, "type": "quantitative"},
        },
    }
