"""Databricks functions whose meaning or result type DuckDB spells differently.

Found by the differential suite against Apache Spark (``tests/differential``). Each rewrite works on
the Databricks AST before it is generated as DuckDB SQL, like those of
:mod:`servicetsunami.sql.duckdb_rewrites`:

- day numbers: ``dayofweek`` is 1 (Sunday) to 7 in Databricks, 0 to 6 in DuckDB; ``weekday`` is 0
  (Monday) to 6; ``extract(DOW ...)`` follows ``dayofweek``; ``dayname``/``monthname`` give
  ``Wed``/``Jan``, where DuckDB writes the whole word;
- result types: date parts, ``datediff``, ``length``, ``instr``, ``size`` and ranks (``row_number``, ``rank``,
  ``dense_rank``, ``ntile``) are INT in Databricks, BIGINT in
  DuckDB;
- JSON: ``get_json_object`` and ``:`` paths give NULL for text that is not JSON, where DuckDB fails
  the whole statement;
- ANSI division: ``x / 0``, ``x % 0`` and ``x DIV 0`` fail in Databricks SQL (DIVIDE_BY_ZERO),
  where DuckDB answers NULL (``try_divide`` keeps answering NULL);
- domains: ``ln``/``log`` of zero or less give NULL and ``sqrt`` of a negative NaN, where DuckDB fails;
- casts of fractional numbers to integers truncate in Databricks (``CAST(3.9 AS INT)`` is 3) and
  round in DuckDB; where the operand is fractional by construction (a decimal literal, a division,
  an average) the cast truncates first. A column's type is not known here, so
  ``CAST(amount AS INT)`` still rounds (a listed deviation);
- functions DuckDB lacks under the Databricks name (``pmod``, ``isnull``, ``zeroifnull``, ...).
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.annotate_types import annotate_types

from servicetsunami.sql.duckdb_rewrites import fill

__all__ = ["apply_function_rewrites"]

# Databricks functions sqlglot leaves as unknown calls: name -> (arity, DuckDB template).
_RENAMED: dict[str, tuple[int, str]] = {
    "pmod": (2, "((__a % (__b)) + (__b)) % (__b)"),
    "isnull": (1, "(__a IS NULL)"),
    "isnotnull": (1, "(__a IS NOT NULL)"),
    "zeroifnull": (1, "COALESCE(__a, 0)"),
    "nullifzero": (1, "NULLIF(__a, 0)"),
    "positive": (1, "(+__a)"),
    "btrim": (1, "TRIM(__a)"),
    "e": (0, "EXP(1)"),
    "weekday": (1, "CAST(ISODOW(CAST(__a AS DATE)) - 1 AS INT)"),
    "find_in_set": (2, "CAST(COALESCE(LIST_POSITION(STRING_SPLIT(__b, ','), __a), 0) AS INT)"),
    "octet_length": (1, "CAST(STRLEN(__a) AS INT)"),
    "every": (1, "BOOL_AND(__a)"),
    "arrays_overlap": (2, "LIST_HAS_ANY(__a, __b)"),
    "try_sum": (1, "SUM(__a)"),  # DuckDB sums integers into HUGEINT: no overflow to turn into NULL
    "try_avg": (1, "AVG(__a)"),
}

# Functions sqlglot knows but renders for DuckDB under a name it lacks (or with arguments swapped).
_TYPED: dict[type[exp.Expr], tuple[tuple[str, ...], str]] = {
    exp.SafeAdd: (("this", "expression"), "TRY(__a + __b)"),
    exp.SafeSubtract: (("this", "expression"), "TRY(__a - __b)"),
    exp.SafeMultiply: (("this", "expression"), "TRY(__a * __b)"),
    exp.MapContainsKey: (("this", "key"), "MAP_CONTAINS(__a, __b)"),
    exp.RegexpSubstr: (("this", "expression"), "NULLIF(REGEXP_EXTRACT(__a, __b), '')"),
    exp.Nanvl: (("this", "expression"), "CASE WHEN ISNAN(__a) THEN __b ELSE __a END"),
    exp.Negative: (("this",), "(-__a)"),
    exp.ArrayPosition: (  # 0 when absent, as Databricks; DuckDB answers NULL
        ("this", "expression"),
        "CAST(CASE WHEN (__a) IS NULL THEN NULL ELSE COALESCE(LIST_POSITION(__a, __b), 0) END AS BIGINT)",
    ),
    # Databricks answers NULL (logarithms) or NaN (square root) outside the domain; DuckDB fails.
    exp.Ln: (("this",), "CASE WHEN (__a) > 0 THEN LN(__a) END"),
    exp.Sqrt: (("this",), "CASE WHEN (__a) < 0 THEN CAST('NaN' AS DOUBLE) ELSE SQRT(__a) END"),
}

# Functions whose Databricks result is INT, where DuckDB answers BIGINT.
_INT_RESULTS: tuple[type[exp.Expr], ...] = (
    exp.Year, exp.Month, exp.Day, exp.DayOfMonth, exp.DayOfYear, exp.Quarter, exp.WeekOfYear,
    exp.Hour, exp.Minute, exp.Second, exp.DateDiff, exp.Length, exp.ArraySize, exp.StrPosition,
    exp.RegexpCount, exp.Levenshtein,
)  # fmt: skip
# ... BIGINT (integer division) and DOUBLE (sign), where DuckDB answers otherwise.
_OTHER_RESULTS: dict[type[exp.Expr], str] = {
    exp.IntDiv: "BIGINT",
    exp.Sign: "DOUBLE",
}

_DAY_OF_WEEK = "CAST(DAYOFWEEK(CAST(__a AS DATE)) + 1 AS INT)"
_INT_PARTS = frozenset(
    {"YEAR", "YEARS", "Y", "MONTH", "MONTHS", "MON", "DAY", "DAYS", "D", "DOY", "DAYOFYEAR", "WEEK", "WEEKS",
     "W", "QUARTER", "QTR", "HOUR", "HOURS", "H", "MINUTE", "MINUTES", "MIN", "M"}
)  # fmt: skip


def apply_function_rewrites(tree: exp.Expr, /) -> None:
    """Apply every rewrite of this module to ``tree`` in place."""
    for rewrite in (
        _json_text_or_null,
        _renamed,
        _log_domain,
        _truncating_casts,
        _division_by_zero_fails,
        _day_numbers,
        _int_results,
    ):
        rewrite(tree)


def _renamed(tree: exp.Expr) -> None:
    for typed in list(tree.find_all(*_TYPED)):
        names, template = _TYPED[type(typed)]
        values = [v for v in (typed.args.get(name) for name in names) if isinstance(v, exp.Expr)]
        if len(values) == len(names):
            typed.replace(fill(template, **dict(zip(("a", "b"), values, strict=False))))
    for node in list(tree.find_all(exp.Anonymous)):
        known = _RENAMED.get(str(node.this).lower())
        if known is None or len(node.expressions) != known[0]:
            continue
        args = dict(zip(("a", "b"), node.expressions, strict=False))
        node.replace(fill(known[1], **args))


def _day_numbers(tree: exp.Expr) -> None:
    for node in list(tree.find_all(exp.DayOfWeek, exp.Extract, exp.Dayname, exp.Monthname)):
        if isinstance(node, exp.DayOfWeek) and not isinstance(node, exp.DayOfWeekIso):
            node.replace(fill(_DAY_OF_WEEK, a=node.this))
        elif isinstance(node, exp.Dayname):
            node.replace(fill("STRFTIME(CAST(__a AS DATE), '%a')", a=node.this))
        elif isinstance(node, exp.Monthname):
            node.replace(fill("STRFTIME(CAST(__a AS DATE), '%b')", a=node.this))
        elif isinstance(node, exp.Extract):
            unit = node.this.name.upper() if isinstance(node.this, exp.Var | exp.Literal) else ""
            if unit in ("DOW", "DAYOFWEEK"):
                node.replace(fill(_DAY_OF_WEEK, a=node.expression))
            elif unit in _INT_PARTS:
                node.replace(exp.cast(node.copy(), exp.DataType.Type.INT))


_INT_RANKS: tuple[type[exp.Expr], ...] = (exp.RowNumber, exp.Rank, exp.DenseRank, exp.Ntile)


def _int_results(tree: exp.Expr) -> None:
    for node in list(tree.find_all(*_INT_RESULTS)):
        node.replace(exp.cast(node.copy(), exp.DataType.Type.INT))
    for node in list(tree.find_all(*_OTHER_RESULTS)):
        node.replace(exp.cast(node.copy(), _OTHER_RESULTS[type(node)]))
    for window in list(tree.find_all(exp.Window)):
        if isinstance(window.this, _INT_RANKS) and not isinstance(window.parent, exp.Cast):
            window.replace(exp.cast(window.copy(), exp.DataType.Type.INT))


def _json_text_or_null(tree: exp.Expr) -> None:
    for node in list(tree.find_all(exp.JSONExtract, exp.JSONExtractScalar)):
        value = node.this
        if isinstance(value, exp.Case) and "json_valid" in value.sql().lower():
            continue
        node.set("this", fill("CASE WHEN JSON_VALID(__a) THEN __a END", a=value))


_NONZERO = (
    "CASE WHEN (__b) = 0 THEN ERROR('[DIVIDE_BY_ZERO] division by zero; use try_divide to get NULL') ELSE __b END"
)


def _log_domain(tree: exp.Expr) -> None:
    for node in list(tree.find_all(exp.Log)):
        value = node.expression if isinstance(node.expression, exp.Expr) else node.this
        if isinstance(value, exp.Expr) and not isinstance(node.parent, exp.If | exp.Case):
            node.replace(exp.case().when(fill("(__a) > 0", a=value), node.copy()))


def _division_by_zero_fails(tree: exp.Expr) -> None:
    for node in list(tree.find_all(exp.Div, exp.Mod, exp.IntDiv)):
        divisor = node.expression
        if isinstance(divisor, exp.Literal) and divisor.is_number and float(divisor.this) != 0:
            continue
        node.set("expression", fill(_NONZERO, b=divisor))


_INTEGRAL = (exp.DataType.Type.TINYINT, exp.DataType.Type.SMALLINT, exp.DataType.Type.INT, exp.DataType.Type.BIGINT)
_FRACTIONAL = (exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT, exp.DataType.Type.DECIMAL)


def _truncating_casts(tree: exp.Expr) -> None:
    for cast in list(tree.find_all(exp.Cast)):  # TryCast too
        if not cast.to.is_type(*_INTEGRAL) or not isinstance(cast.this, exp.Expr):
            continue
        operand = cast.this
        fractional = isinstance(operand, exp.Div | exp.Avg)
        if not fractional and not (isinstance(operand, exp.Literal) and operand.is_string):
            typed = annotate_types(operand.copy(), dialect="databricks")
            fractional = typed.type is not None and typed.type.is_type(*_FRACTIONAL)
        if fractional:
            cast.set("this", exp.func("TRUNC", operand.copy()))
