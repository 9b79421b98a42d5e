"""Compile a :class:`~servicetsunami.services.transforms.spec.TransformSpec` to one Databricks SQL
statement, built as sqlglot expressions (user values only ever become literals or quoted identifiers).

The statement has one shape::

    WITH cleaned AS (SELECT <one expression per column> FROM <bronze table> [VERSION AS OF n])
    SELECT <columns> FROM cleaned [WHERE <filters>] [QUALIFY ROW_NUMBER() OVER (...) = 1]

Per text column the expression is ``NULLIF(TRIM(c), '')`` (as the spec asks), then the cast
(``TRY_CAST`` for ``on_error: null`` and inferred types, ``CAST`` for ``fail``), then ``COALESCE``
with the default. Dates parse with ``try_to_timestamp(c, pattern)`` over the patterns in order.

Type inference is a second, read-only statement (:func:`inference_query`) whose single row of counts
:func:`read_inference` turns into types: a column is typed only when every non-empty value parses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from servicetsunami.connectors.files.reader import unique_names
from servicetsunami.errors import InvalidInput
from servicetsunami.services.models import ColumnInfo
from servicetsunami.services.transforms.spec import CastSpec, Filter, TransformSpec
from servicetsunami.tenancy import IDENTIFIER_RE, TableRef

DIALECT = "databricks"
METADATA_COLUMNS = ("_ingested_at", "_source", "_sync_id")
# Patterns tried for text dates, in this order (ISO first; day-first before month-first on a tie).
DATE_FORMATS = (
    "yyyy-MM-dd",
    "yyyy/MM/dd",
    "dd/MM/yyyy",
    "MM/dd/yyyy",
    "dd.MM.yyyy",
    "dd-MM-yyyy",
    "MMM d, yyyy",
    "MMMM d, yyyy",
    "d MMM yyyy",
    "d MMMM yyyy",
)
TIMESTAMP_FORMATS = ("yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd HH:mm", "dd/MM/yyyy HH:mm")
_INT_RE = "^[+-]?[0-9]+$"
_GROUPED_INT_RE = "^[+-]?[0-9]{1,3}(,[0-9]{3})+$"
_DEC_RE = "^[+-]?[0-9]*[.][0-9]+$"
_GROUPED_DEC_RE = "^[+-]?[0-9]{1,3}(,[0-9]{3})+[.][0-9]+$"
_LEADING_ZERO_RE = "^0[0-9]"


@dataclass(frozen=True, slots=True)
class Inferred:
    """What inference decided for one text column."""

    type: str  # Databricks type name
    thousands: bool = False
    formats: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Compiled:
    statement: exp.Select
    sql: str
    columns: list[str]
    fail_checks: dict[str, tuple[exp.Expr, exp.Expr]] = field(default_factory=dict)  # name -> (value, parsed)
    renamed: dict[str, str] = field(default_factory=dict)  # bronze name -> silver name


def quoted_column(name: str) -> exp.Column:
    return exp.column(exp.to_identifier(name, quoted=True))


def _table(source: TableRef, version: int | None) -> exp.Table:
    table = exp.Table(
        this=exp.to_identifier(source.name),
        db=exp.to_identifier(source.schema),
        catalog=exp.to_identifier(source.catalog),
    )
    if version is not None:
        table.set("version", exp.Version(this="VERSION", kind="AS OF", expression=exp.Literal.number(version)))
    return table


def _literal(value: Any) -> exp.Expr:
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def is_text(type_name: str) -> bool:
    return type_name.upper().startswith(("STRING", "VARCHAR", "CHAR"))


def _datatype(type_name: str, column: str) -> exp.DataType:
    """The type, read whole: text after it (``INT; DROP``, ``DECIMAL(10,2) xyz``, a comment) is
    refused rather than dropped, so the table never gets a type other than the one asked for."""
    refused = InvalidInput(
        f"cast of {column!r}: {type_name!r} is not a Databricks SQL type (e.g. BIGINT, DATE, DECIMAL(10,2))",
        column=column,
        type=type_name,
    )
    try:
        if any(token.comments for token in Dialect.get_or_raise(DIALECT).tokenize(type_name)):
            raise refused
        parsed = sqlglot.parse_one(type_name, read=DIALECT, into=exp.DataType)
    except sqlglot.errors.SqlglotError as exc:
        raise refused from exc
    if not isinstance(parsed, exp.DataType) or parsed.this == exp.DataType.Type.USERDEFINED:
        raise refused
    return parsed


def _parse_dates(value: exp.Expr, formats: tuple[str, ...] | list[str]) -> exp.Expr:
    parsed = [
        exp.Anonymous(this="try_to_timestamp", expressions=[value.copy(), exp.Literal.string(f)]) for f in formats
    ]
    return parsed[0] if len(parsed) == 1 else exp.Coalesce(this=parsed[0], expressions=parsed[1:])


def _strip(value: exp.Expr, separator: str | None) -> exp.Expr:
    if not separator:
        return value
    return exp.Replace(this=value, expression=exp.Literal.string(separator), replacement=exp.Literal.string(""))


def _cast(value: exp.Expr, spec: CastSpec, column: str, *, text: bool) -> tuple[exp.Expr, exp.Expr]:
    """The cast expression, and the parse used to find failing values (NULL where it fails)."""
    target = _datatype(spec.type, column)
    source = _strip(value, spec.thousands_separator) if text else value
    if text and spec.formats and target.this in (exp.DataType.Type.DATE, exp.DataType.Type.TIMESTAMP):
        parsed: exp.Expr = exp.cast(_parse_dates(source, spec.formats), target)
        return parsed, parsed
    tried = exp.TryCast(this=source.copy(), to=target.copy())
    if spec.on_error == "fail":
        return exp.Cast(this=source, to=target), tried
    return tried, tried


def inferred_cast(value: exp.Expr, inferred: Inferred) -> exp.Expr:
    target = exp.DataType.build(inferred.type, dialect=DIALECT)
    if inferred.formats:
        return exp.cast(_parse_dates(value, inferred.formats), target)
    return exp.TryCast(this=_strip(value, "," if inferred.thousands else None), to=target)


class _Names:
    """Silver names of the bronze columns, and lookup of a spec name by silver or bronze name."""

    def __init__(self, columns: list[ColumnInfo], spec: TransformSpec) -> None:
        bronze = [c.name for c in columns]
        unknown = sorted(set(spec.rename) - set(bronze))
        if unknown:
            raise InvalidInput(f"rename names columns the table does not have: {', '.join(unknown)}")
        data = [n for n in bronze if n not in METADATA_COLUMNS]
        snaked = dict(zip(data, unique_names(data), strict=True)) if spec.snake_case else {n: n for n in data}
        self.silver: dict[str, str] = {}
        for name in bronze:
            target = spec.rename.get(name, snaked.get(name, name))
            if not IDENTIFIER_RE.fullmatch(target) and not (name in METADATA_COLUMNS and target == name):
                raise InvalidInput(
                    f"column {name!r} would be named {target!r}: use lower-case letters, digits and underscores "
                    "(add it to rename)"
                )
            self.silver[name] = target
        seen: dict[str, str] = {}
        for name, target in self.silver.items():
            if target in seen:
                raise InvalidInput(f"columns {seen[target]!r} and {name!r} would both be named {target!r}; rename one")
            seen[target] = name
        self.bronze_of = seen

    def resolve(self, name: str, what: str) -> str:
        """The bronze column a spec entry names."""
        if name in self.bronze_of:
            return self.bronze_of[name]
        if name in self.silver:
            return name
        raise InvalidInput(f"{what} names column {name!r}, which the table does not have")


def compile_spec(
    source: TableRef,
    columns: list[ColumnInfo],
    spec: TransformSpec,
    *,
    version: int | None = None,
    inferred: dict[str, Inferred] | None = None,
) -> Compiled:
    """The silver statement for ``source`` (its ``columns`` as described) under ``spec``."""
    inferred = inferred or {}
    names = _Names(columns, spec)
    types = {c.name: c.type for c in columns}
    dropped = {names.resolve(n, "drop") for n in spec.drop}
    if not spec.keep_metadata:
        dropped |= {n for n in types if n in METADATA_COLUMNS}
    casts = {names.resolve(n, "cast"): spec.cast_spec(n) for n in spec.cast}
    defaults = {names.resolve(n, "defaults"): v for n, v in spec.defaults.items()}
    trim = _selected(spec.trim, names, "trim")
    empty = _selected(spec.empty_as_null, names, "empty_as_null")

    projections: list[exp.Expr] = []
    fail_checks: dict[str, tuple[exp.Expr, exp.Expr]] = {}
    for name, type_name in types.items():
        if name in dropped:
            continue
        value: exp.Expr = quoted_column(name)
        if is_text(type_name) and name not in METADATA_COLUMNS:
            if trim is None or name in trim:
                value = exp.Trim(this=value)
            if empty is None or name in empty:
                value = exp.Nullif(this=value, expression=exp.Literal.string(""))
        cast = casts.get(name)
        if cast is not None:
            checked = value.copy()
            value, parsed = _cast(value, cast, name, text=is_text(type_name))
            if cast.on_error == "fail":
                fail_checks[names.silver[name]] = (checked, parsed)
        elif spec.infer_types and name in inferred:
            value = inferred_cast(value, inferred[name])
        if name in defaults:
            value = exp.Coalesce(this=value, expressions=[_literal(defaults[name])])
        projections.append(exp.alias_(value, exp.to_identifier(names.silver[name], quoted=True)))
    if not projections:
        raise InvalidInput("the spec drops every column; keep at least one")
    output = [names.silver[n] for n in types if n not in dropped]

    cleaned = exp.select(*projections).from_(_table(source, version))
    outer = exp.select(*[quoted_column(n) for n in output]).from_("cleaned").with_("cleaned", as_=cleaned)
    conditions = [_filter(f, names) for f in spec.filters]
    if conditions:
        outer = outer.where(exp.and_(*conditions))
    qualify = _dedupe(spec, names, output)
    if qualify is not None:
        outer.set("qualify", exp.Qualify(this=qualify))
    renamed = {b: s for b, s in names.silver.items() if b != s and b not in dropped}
    return Compiled(outer, outer.sql(dialect=DIALECT, pretty=True), output, fail_checks, renamed)


def _selected(choice: bool | list[str], names: _Names, what: str) -> set[str] | None:
    """None means every column; else the bronze names chosen."""
    if choice is True:
        return None
    if choice is False:
        return set()
    return {names.resolve(n, what) for n in choice}


def _filter(f: Filter, names: _Names) -> exp.Expr:
    column = quoted_column(names.silver[names.resolve(f.column, "filter")])
    if f.op == "is_null":
        return exp.Is(this=column, expression=exp.null())
    if f.op == "not_null":
        return exp.not_(exp.Is(this=column, expression=exp.null()))
    if f.op in ("in", "not_in"):
        if not isinstance(f.value, list) or not f.value:
            raise InvalidInput(f"filter on {f.column!r}: {f.op} needs a non-empty list as value")
        found: exp.Expr = exp.In(this=column, expressions=[_literal(v) for v in f.value])
        return exp.not_(found) if f.op == "not_in" else found
    if f.value is None or isinstance(f.value, list):
        raise InvalidInput(f"filter on {f.column!r}: {f.op} needs one value (use is_null for NULL)")
    value = _literal(f.value)
    ops: dict[str, type[exp.Binary]] = {
        "=": exp.EQ,
        "!=": exp.NEQ,
        "<": exp.LT,
        "<=": exp.LTE,
        ">": exp.GT,
        ">=": exp.GTE,
        "like": exp.Like,
    }
    return ops[f.op](this=column, expression=value)


def _dedupe(spec: TransformSpec, names: _Names, output: list[str]) -> exp.Expr | None:
    if spec.dedupe is None:
        return None
    has_ingested = "_ingested_at" in output
    if spec.dedupe.keys:
        keys = [names.silver[names.resolve(k, "dedupe keys")] for k in spec.dedupe.keys]
        missing = [k for k in keys if k not in output]
        if missing:
            raise InvalidInput(f"dedupe keys {', '.join(missing)} are dropped by the spec")
    else:
        keys = [n for n in output if n not in METADATA_COLUMNS]
    order: list[exp.Ordered] = []
    if spec.dedupe.order_by:
        by = names.silver[names.resolve(spec.dedupe.order_by, "dedupe order_by")]
        order.append(exp.Ordered(this=quoted_column(by), desc=True, nulls_first=False))
    if has_ingested:
        order.append(exp.Ordered(this=quoted_column("_ingested_at"), desc=True, nulls_first=False))
    if not order:  # a window must be ordered on Databricks; any order works for exact duplicates
        order = [exp.Ordered(this=quoted_column(k), nulls_first=True) for k in keys]
    window = exp.Window(
        this=exp.RowNumber(),
        partition_by=[quoted_column(k) for k in keys],
        order=exp.Order(expressions=order),
    )
    return exp.EQ(this=window, expression=exp.Literal.number(1))


# -- inference ------------------------------------------------------------------------------------


def _count_if(condition: exp.Expr) -> exp.Expr:
    return exp.func("count_if", condition, dialect=DIALECT)


def _matches(value: exp.Expr, pattern: str) -> exp.Expr:
    return exp.RegexpLike(this=value.copy(), expression=exp.Literal.string(pattern))


def _is_boolean(value: exp.Expr) -> exp.Expr:
    return exp.In(this=exp.Lower(this=value.copy()), expressions=[_literal("true"), _literal("false")])


def inference_query(source: TableRef, columns: list[str], *, version: int | None = None) -> exp.Select:
    """One row of counts per text column: non-empty values and how many match each parse."""
    projections: list[exp.Expr] = []
    for i, name in enumerate(columns):
        value = exp.Nullif(this=exp.Trim(this=quoted_column(name)), expression=exp.Literal.string(""))
        checks: dict[str, exp.Expr] = {
            "n": exp.Count(this=value.copy()),
            "int": _count_if(_matches(value, _INT_RE)),
            "gint": _count_if(_matches(value, _GROUPED_INT_RE)),
            "dec": _count_if(_matches(value, _DEC_RE)),
            "gdec": _count_if(_matches(value, _GROUPED_DEC_RE)),
            "zero": _count_if(_matches(value, _LEADING_ZERO_RE)),
            "bool": _count_if(_is_boolean(value)),
            "scale": exp.Max(
                this=exp.Length(
                    this=exp.RegexpExtract(
                        this=value.copy(), expression=exp.Literal.string("[.]([0-9]+)$"), group=exp.Literal.number(1)
                    )
                )
            ),
            "digits": exp.Max(this=exp.Length(this=value.copy())),
        }
        for j, f in enumerate(DATE_FORMATS + TIMESTAMP_FORMATS):
            checks[f"f{j}"] = exp.Count(this=_parse_dates(value, [f]))
        for key, check in checks.items():
            projections.append(exp.alias_(check, f"c{i}_{key}"))
    return exp.select(*projections).from_(_table(source, version))


def read_inference(columns: list[str], row: dict[str, Any]) -> dict[str, Inferred]:
    """Types for the columns whose every non-empty value parses (see :func:`inference_query`)."""
    out: dict[str, Inferred] = {}
    formats = DATE_FORMATS + TIMESTAMP_FORMATS
    for i, name in enumerate(columns):

        def get(key: str, i: int = i) -> int:
            return int(row.get(f"c{i}_{key}") or 0)

        n = get("n")
        if n == 0:
            continue
        if get("zero") and get("int") + get("gint") == n:
            continue  # codes such as 00123: keep the text
        if get("int") + get("gint") == n:
            out[name] = Inferred("BIGINT", thousands=get("gint") > 0)
        elif get("int") + get("gint") + get("dec") + get("gdec") == n:
            scale = get("scale")
            digits = get("digits")
            grouped = get("gint") + get("gdec") > 0
            if scale <= 6 and digits <= 17:
                out[name] = Inferred(f"DECIMAL(18,{scale})", thousands=grouped)
            else:
                out[name] = Inferred("DOUBLE", thousands=grouped)
        elif get("bool") == n:
            out[name] = Inferred("BOOLEAN")
        else:
            counts = {f: get(f"f{j}") for j, f in enumerate(formats)}
            chosen = _covering_formats(counts)
            if chosen is None:
                continue
            is_timestamp = any(f in TIMESTAMP_FORMATS for f in chosen)
            out[name] = Inferred("TIMESTAMP" if is_timestamp else "DATE", formats=tuple(chosen))
    return out


def _covering_formats(counts: dict[str, int]) -> list[str] | None:
    """The patterns with any match, in priority order; day-first and month-first slashes never both
    (the one matching more values wins). None when no pattern matched."""
    chosen = [f for f, c in counts.items() if c > 0]
    if "dd/MM/yyyy" in chosen and "MM/dd/yyyy" in chosen:
        loser = "MM/dd/yyyy" if counts["dd/MM/yyyy"] >= counts["MM/dd/yyyy"] else "dd/MM/yyyy"
        chosen.remove(loser)
    return chosen or None


def coverage_query(
    source: TableRef, parsed: dict[str, tuple[exp.Expr, exp.Expr]], *, version: int | None = None
) -> exp.Select:
    """Counts of non-empty values that the chosen parse turns into NULL, one per column (0 = all parse)."""
    projections = [
        exp.alias_(
            _count_if(
                exp.and_(
                    exp.not_(exp.Is(this=v.copy(), expression=exp.null())), exp.Is(this=p.copy(), expression=exp.null())
                )
            ),
            f"c{i}",
        )
        for i, (v, p) in enumerate(parsed.values())
    ]
    return exp.select(*projections).from_(_table(source, version))


def failing_value_query(
    source: TableRef, checks: dict[str, tuple[exp.Expr, exp.Expr]], *, version: int | None
) -> exp.Select:
    """One example value per ``fail`` cast that does not convert (NULL where all convert)."""
    projections = []
    for i, (value, parsed) in enumerate(checks.values()):
        bad = exp.and_(
            exp.not_(exp.Is(this=value.copy(), expression=exp.null())),
            exp.Is(this=parsed.copy(), expression=exp.null()),
        )
        projections.append(exp.alias_(exp.Max(this=exp.If(this=bad, true=exp.cast(value.copy(), "STRING"))), f"c{i}"))
    return exp.select(*projections).from_(_table(source, version))
