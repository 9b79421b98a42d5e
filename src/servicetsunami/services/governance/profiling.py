"""Profile a table: per column type, null share, distinct count, min/max, top values, likely keys and
likely PII (by content, not only by name).

Three read-only statements, built with sqlglot and run through the guard:

1. one scan of the whole table for counts, nulls, min/max and distinct counts (exact on small
   tables, ``approx_count_distinct`` past :data:`EXACT_DISTINCT_ROWS`);
2. top values per column over a sample (``TABLESAMPLE``) when the table is larger than
   :data:`SAMPLE_ROWS`; columns that look unique are skipped;
3. up to :data:`PII_ROWS` rows of the text columns, classified in Python (:mod:`.pii`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field
from sqlglot import exp

from servicetsunami.services.catalog.query import _json_value
from servicetsunami.services.catalog.views import expand_views
from servicetsunami.services.governance import pii
from servicetsunami.sql import guard_query
from servicetsunami.tenancy import Principal, Scope, TableRef, parse_table_name

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

DIALECT = "databricks"
EXACT_DISTINCT_ROWS = 200_000
SAMPLE_ROWS = 100_000
PII_ROWS = 2_000
TOP_VALUES = 5
_ORDERABLE = ("TINYINT", "SMALLINT", "INT", "BIGINT", "FLOAT", "DOUBLE", "DECIMAL", "DATE", "TIMESTAMP", "STRING")


class TopValue(BaseModel):
    value: Any
    count: int


class ColumnProfile(BaseModel):
    name: str
    type: str
    nulls: int
    null_share: float = Field(description="Share of rows that are NULL, 0..1")
    distinct: int
    distinct_approximate: bool = False
    min: Any = None
    max: Any = None
    top_values: list[TopValue] = Field(default_factory=list)
    likely_key: bool = False
    pii: str | None = Field(None, description="email, phone, national_id, name, address or birth_date")
    pii_evidence: str | None = Field(None, description="content (the values look like it) or name")
    comment: str | None = None


class TableProfile(BaseModel):
    table: str
    rows: int
    sampled: bool = Field(description="Top values came from a sample of the rows")
    sample_rows: int | None = None
    columns: list[ColumnProfile]
    likely_keys: list[str]
    pii_columns: dict[str, str]
    elapsed_ms: float


@pii.redacting
def profile_table(svc: Services, principal: Principal, table_name: str, /) -> TableProfile:
    principal.require(Scope.READ)
    started = time.perf_counter()
    ref = parse_table_name(table_name, catalog=principal.catalog)
    from servicetsunami.services.catalog.tables import describe_table  # catalog shows profiles, profiling reads it

    described = describe_table(svc, principal, f"{ref.schema}.{ref.name}")
    columns = [(c.name, c.type, c.comment) for c in described.columns]
    stats = _run(svc, principal, _stats_query(ref, columns, exact=(described.rows or 0) <= EXACT_DISTINCT_ROWS))[0]
    rows = int(stats["n"])
    exact = rows <= EXACT_DISTINCT_ROWS
    sampled = rows > SAMPLE_ROWS
    profiles: list[ColumnProfile] = []
    for i, (name, type_name, comment) in enumerate(columns):
        non_null = int(stats[f"c{i}_n"])
        distinct = int(stats[f"c{i}_d"])
        key = rows > 0 and non_null == rows and distinct >= (rows if exact else rows * 0.97)
        profiles.append(
            ColumnProfile(
                name=name,
                type=type_name,
                nulls=rows - non_null,
                null_share=round((rows - non_null) / rows, 4) if rows else 0.0,
                distinct=distinct,
                distinct_approximate=not exact,
                min=_json_value(stats.get(f"c{i}_min")),
                max=_json_value(stats.get(f"c{i}_max")),
                likely_key=key and not name.startswith("_") and _key_type(type_name),
                comment=comment,
            )
        )
    wanted = [i for i, p in enumerate(profiles) if not p.likely_key and p.distinct > 0 and _groupable(p.type)]
    if wanted and rows:
        for row in _run(svc, principal, _top_query(ref, columns, wanted, rows if sampled else None)):
            profiles[int(row["col"])].top_values.append(TopValue(value=_json_value(row["value"]), count=int(row["n"])))
    _flag_pii(svc, principal, ref, profiles)
    flags = {p.name: p.pii for p in profiles if p.pii}
    known = pii.remember_flags(svc, principal, f"{ref.schema}.{ref.name}", flags)
    if known and pii.mask_pii_enabled(svc, principal):  # values of personal data are masked like any result
        for p in profiles:
            if p.pii or p.name in known:
                p.min = p.max = None if p.min is None else pii.MASK
                p.top_values = [TopValue(value=pii.MASK, count=t.count) for t in p.top_values]
    return TableProfile(
        table=f"{ref.schema}.{ref.name}",
        rows=rows,
        sampled=sampled,
        sample_rows=SAMPLE_ROWS if sampled else None,
        columns=profiles,
        likely_keys=[p.name for p in profiles if p.likely_key],
        pii_columns=flags,
        elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
    )


def _col(name: str) -> exp.Column:
    return exp.column(exp.to_identifier(name, quoted=True))


def _table(ref: TableRef) -> exp.Table:
    return exp.Table(
        this=exp.to_identifier(ref.name), db=exp.to_identifier(ref.schema), catalog=exp.to_identifier(ref.catalog)
    )


def _key_type(type_name: str) -> bool:
    """Keys are whole numbers or text; unique measures and timestamps are coincidences."""
    return type_name.upper().split("(")[0] in ("TINYINT", "SMALLINT", "INT", "BIGINT", "STRING")


def _orderable(type_name: str) -> bool:
    return type_name.upper().split("(")[0] in _ORDERABLE


def _groupable(type_name: str) -> bool:
    return not type_name.upper().startswith(("ARRAY", "MAP", "STRUCT", "BINARY", "VARIANT"))


def _stats_query(ref: TableRef, columns: list[tuple[str, str, str | None]], *, exact: bool) -> exp.Select:
    projections: list[exp.Expr] = [exp.alias_(exp.Count(this=exp.Star()), "n")]
    for i, (name, type_name, _) in enumerate(columns):
        projections.append(exp.alias_(exp.Count(this=_col(name)), f"c{i}_n"))
        if not _groupable(type_name):
            projections.append(exp.alias_(exp.Literal.number(0), f"c{i}_d"))
            continue
        distinct = (
            exp.Count(this=exp.Distinct(expressions=[_col(name)])) if exact else exp.ApproxDistinct(this=_col(name))
        )
        projections.append(exp.alias_(distinct, f"c{i}_d"))
        if _orderable(type_name):
            projections.append(exp.alias_(exp.Min(this=_col(name)), f"c{i}_min"))
            projections.append(exp.alias_(exp.Max(this=_col(name)), f"c{i}_max"))
    return exp.select(*projections).from_(_table(ref))


def _top_query(
    ref: TableRef, columns: list[tuple[str, str, str | None]], wanted: list[int], rows: int | None
) -> exp.Select:
    source = _table(ref)
    if rows is not None:  # a sample of about SAMPLE_ROWS rows
        percent = max(0.01, round(100 * SAMPLE_ROWS / rows, 2))
        source.set("sample", exp.TableSample(percent=exp.Literal.number(percent)))
    branches = [
        exp.select(
            exp.alias_(exp.Literal.number(i), "col"),
            exp.alias_(exp.cast(_col(columns[i][0]), "STRING"), "value"),
            exp.alias_(exp.Count(this=exp.Star()), "n"),
        )
        .from_("s")
        .where(exp.not_(exp.Is(this=_col(columns[i][0]), expression=exp.null())))
        .group_by(_col(columns[i][0]))
        for i in wanted
    ]
    union: exp.Query = branches[0]
    for branch in branches[1:]:
        union = exp.union(union, branch, distinct=False)
    window = exp.Window(
        this=exp.RowNumber(),
        partition_by=[exp.column("col")],
        order=exp.Order(
            expressions=[exp.Ordered(this=exp.column("n"), desc=True), exp.Ordered(this=exp.column("value"))]
        ),
    )
    outer = (
        exp.select("col", "value", "n")
        .from_(exp.Subquery(this=union, alias=exp.TableAlias(this=exp.to_identifier("u"))))
        .with_("s", as_=exp.select("*").from_(source))
    )
    outer.set("qualify", exp.Qualify(this=exp.LTE(this=window, expression=exp.Literal.number(TOP_VALUES))))
    return outer.order_by("col", exp.Ordered(this=exp.column("n"), desc=True))


def _flag_pii(svc: Services, principal: Principal, ref: TableRef, profiles: list[ColumnProfile]) -> None:
    text = [p for p in profiles if p.type.upper().startswith("STRING") and not p.name.startswith("_")]
    values: dict[str, list[Any]] = {}
    if text:
        query = exp.select(*[_col(p.name) for p in text]).from_(_table(ref)).limit(PII_ROWS)
        for row in _run(svc, principal, query):
            for p in text:
                values.setdefault(p.name, []).append(row[p.name])
    for p in profiles:
        by_content = pii.kind_by_content(values.get(p.name, []))
        by_name = pii.kind_by_name(p.name)
        if by_content:
            p.pii, p.pii_evidence = by_content, "content"
        elif by_name and not p.likely_key:
            p.pii, p.pii_evidence = by_name, "name"


def _run(svc: Services, principal: Principal, statement: exp.Expr) -> list[dict[str, Any]]:
    guarded = guard_query(statement.sql(dialect=DIALECT), catalog=principal.catalog)
    guarded = expand_views(svc, principal, guarded)
    result = svc.engine.query(
        guarded, max_rows=100_000, max_bytes=64 * 1024 * 1024, timeout_seconds=svc.settings.query.timeout_seconds
    )
    rows: list[dict[str, Any]] = result.table.to_pylist()
    return rows
