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
    (r"(^|_)(region|country|city|state_code|zip|postcode|address)(_|$)", "a place"),
    (r"(amount|price|total|cost|revenue|sales|fee)", "a money amount"),
    (r"(^|_)(qty|quantity|count|cnt|units|number|num)(_|s?$)", "a count"),
    (r"(status|state|stage)$", "a status or lifecycle stage"),
    (r"(type|kind|category|segment|class)$", "a category"),
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
