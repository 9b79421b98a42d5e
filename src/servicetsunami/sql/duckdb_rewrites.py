"""AST rewrites for Databricks constructs that sqlglot's DuckDB generator gets wrong.

Each rewrite works on the Databricks AST just before it is generated as DuckDB SQL, and each says
what Databricks does and what sqlglot would otherwise emit. They are checked by the golden corpus in
``tests/unit/sql/test_golden.py``, which runs Databricks SQL on DuckDB and compares rows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

Rewrite = Callable[[exp.Expr], None]

# Spark's date/time unit spellings that DuckDB's date_trunc does not know.
_UNIT_ALIASES = {"YYYY": "YEAR", "YY": "YEAR", "MM": "MONTH", "MON": "MONTH", "DD": "DAY"}


def apply_rewrites(tree: exp.Expr, /) -> None:
    """Apply every rewrite to ``tree`` in place."""
    for rewrite in REWRITES:
        rewrite(tree)


@functools.cache
def _template(sql: str) -> exp.Expr:
    return sqlglot.parse_one(sql, read="duckdb")


def fill(template: str, **args: exp.Expr) -> exp.Expr:
    """Parse a DuckDB ``template`` and put a copy of ``args[name]`` wherever ``__name`` occurs."""
    tree = _template(template).copy()
    for column in list(tree.find_all(exp.Column)):
        name = column.name
        if not column.table and name.startswith("__") and name[2:] in args:
            column.replace(exp.paren(args[name[2:]].copy(), copy=False))
    return tree


def _unnest(*args: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this="UNNEST", expressions=list(args))


def lateral_views_to_joins(tree: exp.Expr) -> None:
    """``LATERAL VIEW [OUTER] explode|posexplode|inline(...) t AS cols`` as lateral joins.

    sqlglot emits ``CROSS JOIN UNNEST(...)``, which drops the rows OUTER must keep, and for
    posexplode buries the user's table alias inside an unaliased subquery (``t.pos`` then fails; with
    no column list it raises IndexError). We emit ``[CROSS | LEFT] JOIN LATERAL (SELECT ...) AS t``
    with Spark's default column names (``col``; ``pos, col``); two names after explode mean a map.
    """
    for select in list(tree.find_all(exp.Select)):
        laterals = select.args.get("laterals") or []
        views = [lateral for lateral in laterals if lateral.args.get("view")]
        if not views:
            continue
        joins = list(select.args.get("joins") or [])
        joins.extend(_lateral_view_join(view, index) for index, view in enumerate(views))
        select.set("laterals", [lateral for lateral in laterals if not lateral.args.get("view")] or None)
        select.set("joins", joins)


def _lateral_view_join(lateral: exp.Lateral, index: int) -> exp.Join:
    generator = lateral.this
    alias = lateral.args.get("alias")
    name = alias.name if isinstance(alias, exp.TableAlias) and alias.name else f"_lateral_view_{index}"
    columns = [c.name for c in alias.columns] if isinstance(alias, exp.TableAlias) else []
    outer = bool(lateral.args.get("outer")) or isinstance(generator, exp.ExplodeOuter)
    value = generator.this
    table_columns: list[str] | None = None
    if isinstance(generator, exp.Posexplode):
        if len(columns) == 3:  # a map: pos, key, value
            projections = [
                exp.alias_(fill("UNNEST(RANGE(0, LEN(MAP_KEYS(__m))))", m=value), columns[0]),
                exp.alias_(_unnest(exp.func("MAP_KEYS", value.copy())), columns[1]),
                exp.alias_(_unnest(exp.func("MAP_VALUES", value.copy())), columns[2]),
            ]
        else:
            pos, col = (columns + ["pos", "col"][len(columns) :])[:2]
            projections = [
                exp.alias_(fill("UNNEST(RANGE(0, LEN(__a)))", a=value), pos),
                exp.alias_(_unnest(value.copy()), col),
            ]
    elif isinstance(generator, exp.Inline):
        # UNNEST of a list of structs two levels deep yields one column per struct field.
        depth = exp.Kwarg(this=exp.var("max_depth"), expression=exp.Literal.number(2))
        projections = [_unnest(value.copy(), depth)]
        table_columns = columns or None
    elif len(columns) == 2:  # explode of a map: key, value
        projections = [
            exp.alias_(_unnest(exp.func("MAP_KEYS", value.copy())), columns[0]),
            exp.alias_(_unnest(exp.func("MAP_VALUES", value.copy())), columns[1]),
        ]
    else:
        projections = [exp.alias_(_unnest(value.copy()), columns[0] if columns else "col")]
    table_alias = exp.TableAlias(
        this=exp.to_identifier(name),
        columns=[exp.to_identifier(c) for c in table_columns] if table_columns else None,
    )
    source = exp.Lateral(this=exp.Select(expressions=projections).subquery(), alias=table_alias)
    if outer:
        return exp.Join(this=source, side="LEFT", on=exp.true())
    return exp.Join(this=source, kind="CROSS")


def select_list_explode(tree: exp.Expr) -> None:
    """``SELECT explode(a)`` names its column ``col`` as Spark does; ``explode_outer`` keeps a row.

    DuckDB would name the column ``unnest(a)``, and sqlglot renders explode_outer as a plain UNNEST,
    which drops rows whose array is empty or NULL (Spark yields one NULL for them).
    """
    for select in list(tree.find_all(exp.Select)):
        for projection in list(select.expressions):
            if not isinstance(projection, exp.Explode) or isinstance(projection, exp.Posexplode):
                continue
            value = projection.this
            if isinstance(projection, exp.ExplodeOuter):
                value = fill("CASE WHEN LEN(__a) > 0 THEN __a ELSE [NULL] END", a=value)
            projection.replace(exp.alias_(_unnest(value), "col"))


def variant_extract_as_text(tree: exp.Expr) -> None:
    """``payload:a.b`` returns a STRING in Databricks; sqlglot emits DuckDB ``->`` (JSON, quoted)."""
    for node in list(tree.find_all(exp.JSONExtract)):
        if node.args.get("variant_extract"):
            node.replace(exp.JSONExtractScalar(this=node.this, expression=node.expression))


def date_arithmetic_returns_date(tree: exp.Expr) -> None:
    """``date_add``, ``date_sub`` and ``add_months`` return DATE in Databricks.

    sqlglot emits ``CAST(d AS DATE) + INTERVAL n DAY``, which is a TIMESTAMP in DuckDB.
    """
    for node in list(tree.find_all(exp.TsOrDsAdd, exp.AddMonths)):
        if isinstance(node, exp.TsOrDsAdd) and not node.return_type.is_type(exp.DataType.Type.DATE):
            continue
        node.replace(exp.cast(node.copy(), exp.DataType.Type.DATE))


def truncation_units(tree: exp.Expr) -> None:
    """``trunc(d, 'MM')`` / ``date_trunc('MM', ts)``: DuckDB does not know MM, MON, YYYY, YY, DD.

    ``trunc`` also returns a DATE in Databricks, where DuckDB's date_trunc returns a TIMESTAMP.
    """
    for node in list(tree.find_all(exp.DateTrunc, exp.TimestampTrunc)):
        unit = node.args.get("unit")
        if isinstance(unit, (exp.Literal, exp.Var)):
            name = unit.name.upper()
            name = _UNIT_ALIASES.get(name, name)
            node.set("unit", exp.Literal.string(name) if isinstance(unit, exp.Literal) else exp.var(name))
        if isinstance(node, exp.DateTrunc):
            node.replace(exp.cast(node.copy(), exp.DataType.Type.DATE))


_MONTHS_BETWEEN = (
    "DATE_DIFF('month', CAST(__b AS DATE), CAST(__a AS DATE)) + CASE"
    " WHEN DAY(CAST(__a AS DATE)) = DAY(CAST(__b AS DATE))"
    " OR (CAST(__a AS DATE) = LAST_DAY(CAST(__a AS DATE))"
    " AND CAST(__b AS DATE) = LAST_DAY(CAST(__b AS DATE)))"
    " THEN 0 ELSE ((DAY(CAST(__a AS DATE)) - DAY(CAST(__b AS DATE))) * 86400"
    " + EPOCH(CAST(__a AS TIMESTAMP) - DATE_TRUNC('day', CAST(__a AS TIMESTAMP)))"
    " - EPOCH(CAST(__b AS TIMESTAMP) - DATE_TRUNC('day', CAST(__b AS TIMESTAMP)))) / (31.0 * 86400) END"
)


def months_between(tree: exp.Expr) -> None:
    """``months_between(a, b[, roundOff])`` with Spark's time-of-day term and 8-digit rounding.

    sqlglot's DuckDB form ignores the time of day and never rounds.
    """
    for node in list(tree.find_all(exp.MonthsBetween)):
        value = fill(_MONTHS_BETWEEN, a=node.this, b=node.expression)
        roundoff = node.args.get("roundoff")
        if not (isinstance(roundoff, exp.Boolean) and roundoff.this is False):
            value = exp.func("ROUND", value, exp.Literal.number(8))
        node.replace(value)


@functools.cache
def _default_unix_format() -> exp.Expr | None:
    # What sqlglot fills in for unix_timestamp(x) without a format (Spark's yyyy-MM-dd HH:mm:ss).
    parsed = sqlglot.parse_one("unix_timestamp(x)", read="databricks")
    return parsed.args.get("format")


def unix_timestamp(tree: exp.Expr) -> None:
    """``unix_timestamp(x)`` takes strings, dates and timestamps and returns whole seconds (BIGINT).

    sqlglot emits ``EPOCH(STRPTIME(x, fmt))``: STRPTIME fails on a TIMESTAMP column, and EPOCH
    returns a DOUBLE. Without an explicit format we cast instead of parsing; either way we floor.
    """
    default = _default_unix_format()
    for node in list(tree.find_all(exp.StrToUnix)):
        value = node.this
        fmt = node.args.get("format")
        if fmt is not None and fmt != default:
            node.replace(fill("CAST(FLOOR(__x) AS BIGINT)", x=node.copy()))
        elif value is None or isinstance(value, exp.CurrentTimestamp):
            node.replace(fill("CAST(FLOOR(EPOCH(CURRENT_TIMESTAMP)) AS BIGINT)"))
        else:
            node.replace(fill("CAST(FLOOR(EPOCH(CAST(__x AS TIMESTAMP))) AS BIGINT)", x=value))


# Expressions that are arrays whatever their input; concat_ws flattens these in Databricks.
_ARRAY_EXPRESSIONS: tuple[type[exp.Expr], ...] = (
    exp.Array, exp.ArrayAgg, exp.ArrayUniqueAgg, exp.Split, exp.RegexpSplit, exp.ArraySort,
    exp.ArrayDistinct, exp.ArrayFilter, exp.Transform, exp.ArrayConcat,
    exp.Flatten, exp.ArraySlice, exp.ArrayIntersect, exp.ArrayExcept,
    exp.ArrayCompact, exp.ArrayRemove, exp.GenerateSeries,
)  # fmt: skip


def concat_ws_arrays(tree: exp.Expr) -> None:
    """``concat_ws(',', collect_list(x))`` joins the elements in Databricks.

    DuckDB's concat_ws renders a list argument as ``[a, b]``. Only arguments that are arrays by
    construction are rewritten: the type of a plain column is not known here.
    """
    for node in list(tree.find_all(exp.ConcatWs)):
        separator, *values = node.expressions
        if not any(isinstance(v, _ARRAY_EXPRESSIONS) for v in values):
            continue
        rewritten = [
            fill("NULLIF(ARRAY_TO_STRING(__a, __s), '')", a=v, s=separator) if isinstance(v, _ARRAY_EXPRESSIONS) else v
            for v in values
        ]
        node.set("expressions", [separator, *rewritten])


def range_columns(tree: exp.Expr) -> None:
    """``FROM range(n)``: Databricks names the column ``id``; DuckDB names it ``range``."""
    for table in list(tree.find_all(exp.Table)):
        source = table.this
        if not (isinstance(source, exp.Func) and source.name.lower() == "range"):
            continue
        if isinstance(source, exp.Anonymous) and len(source.expressions) > 3:
            source.set("expressions", source.expressions[:3])  # drop Spark's numPartitions
        alias = table.args.get("alias")
        if not isinstance(alias, exp.TableAlias):
            alias = exp.TableAlias(this=exp.to_identifier("range"))
            table.set("alias", alias)
        if not alias.columns:
            alias.set("columns", [exp.to_identifier("id")])


def timestamps_in_utc(tree: exp.Expr) -> None:
    """Databricks ``TIMESTAMP`` becomes DuckDB ``TIMESTAMP``, not ``TIMESTAMPTZ``.

    sqlglot maps it to TIMESTAMPTZ (Databricks timestamps are instants shown in the session time
    zone). The local engine works in UTC, Databricks' default session time zone, where the two
    agree; a naive TIMESTAMP keeps results independent of the process's zone (and DuckDB's Python
    client needs pytz to return TIMESTAMPTZ values at all).
    """
    for node in list(tree.find_all(exp.DataType)):
        if node.this in (exp.DataType.Type.TIMESTAMPTZ, exp.DataType.Type.TIMESTAMPLTZ):
            node.set("this", exp.DataType.Type.TIMESTAMP)


def try_to_timestamp(tree: exp.Expr) -> None:
    """``try_to_timestamp(s, fmt)`` parses with a Spark pattern and gives NULL when it does not match.

    sqlglot keeps it as an unknown function, which DuckDB lacks. It becomes ``TRY_STRPTIME`` with the
    pattern translated (a constant pattern only), or ``TRY_CAST(s AS TIMESTAMP)`` without one.
    """
    spark = Dialect.get_or_raise("databricks")
    for node in list(tree.find_all(exp.Anonymous)):
        if str(node.this).lower() != "try_to_timestamp" or not 1 <= len(node.expressions) <= 2:
            continue
        value, *fmt = node.expressions
        if not fmt:
            node.replace(exp.TryCast(this=value.copy(), to=exp.DataType.build("TIMESTAMP")))
        elif isinstance(fmt[0], exp.Literal) and fmt[0].is_string:
            node.replace(exp.StrToTime(this=value.copy(), format=spark.format_time(fmt[0]), safe=True))


def drop_hints(tree: exp.Expr) -> None:
    """Join and partition hints mean nothing to DuckDB."""
    for hint in list(tree.find_all(exp.Hint)):
        hint.pop()


REWRITES: tuple[Rewrite, ...] = (
    drop_hints,
    lateral_views_to_joins,
    select_list_explode,
    variant_extract_as_text,
    date_arithmetic_returns_date,
    truncation_units,
    months_between,
    unix_timestamp,
    concat_ws_arrays,
    range_columns,
    try_to_timestamp,
    timestamps_in_utc,
)
