"""The names Databricks gives result columns the query did not name.

``SELECT count(*), upper(name), id + 1 FROM t`` returns columns named ``count(1)``, ``upper(name)``
and ``(id + 1)`` on Databricks; DuckDB would say ``count_star()``, ``upper("name")`` and
``(id + 1)``. :func:`name_result_columns` aliases every unnamed projection of the statement's own
result with Spark's pretty name, so a result means the same column names on every engine.

Spark's rules, as its ``toPrettySQL`` applies them: a column is its bare name (a struct field its
field name); literals show their value without quotes (``DATE '2024-01-05'`` keeps its keyword);
binary operators and ``NOT``/``IS NULL``/unary minus are parenthesised; functions are lower-case
with ``, `` between arguments; ``count(*)`` is ``count(1)``; a cast shows only its operand.
Expressions whose Spark names spell out defaults the query did not write (window frames, lambdas)
keep the local engine's name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from sqlglot import exp
from sqlglot.dialects.spark import Spark

__all__ = ["name_result_columns", "spark_column_name"]

_KEEP_LOCAL_NAME: tuple[type[exp.Expr], ...] = (exp.Window, exp.Lambda, exp.Subquery, exp.Explode)


class _PrettyGenerator(Spark.Generator):  # type: ignore[misc,valid-type]  # a class attribute of the dialect
    """Spark SQL as Spark prints it in a column name."""

    def literal_sql(self, expression: exp.Literal) -> str:
        return str(expression.this) if expression.is_string else super().literal_sql(expression)

    def column_sql(self, expression: exp.Column) -> str:
        return str(self.sql(expression, "this"))

    def dot_sql(self, expression: exp.Dot) -> str:
        return str(self.sql(expression, "expression"))

    def paren_sql(self, expression: exp.Paren) -> str:
        return str(self.sql(expression, "this"))

    def binary(self, expression: exp.Binary, op: str) -> str:
        return f"({super().binary(expression, op)})"

    def not_sql(self, expression: exp.Not) -> str:
        return f"({super().not_sql(expression)})"

    def neg_sql(self, expression: exp.Neg) -> str:
        return f"(- {self.sql(expression, 'this')})"

    def and_sql(self, expression: exp.And, stack: list[str | exp.Expr] | None = None) -> str:
        return f"({super().and_sql(expression, stack)})"

    def or_sql(self, expression: exp.Or, stack: list[str | exp.Expr] | None = None) -> str:
        return f"({super().or_sql(expression, stack)})"

    def boolean_sql(self, expression: exp.Boolean) -> str:
        return "true" if expression.this else "false"

    def cast_sql(self, expression: exp.Cast, safe_prefix: str | None = None) -> str:
        inner = expression.this
        if isinstance(inner, exp.Literal) and inner.is_string and expression.to.this in _TYPED_LITERALS:
            return f"{_TYPED_LITERALS[expression.to.this]} '{inner.this}'"
        return str(self.sql(inner))

    def count_sql(self, expression: exp.Count) -> str:
        if isinstance(expression.this, exp.Star):
            return "count(1)"
        return str(self.function_fallback_sql(expression))

    TRANSFORMS: ClassVar[dict[type[exp.Expr], Callable[..., str]]] = {
        **Spark.Generator.TRANSFORMS,
        exp.If: lambda self, e: f"(IF({self.sql(e, 'this')}, {self.sql(e, 'true')}, {self.sql(e, 'false')}))",
        exp.CurrentDate: lambda self, e: "current_date()",
        exp.CurrentTimestamp: lambda self, e: "current_timestamp()",
        # The spellings Spark shows for calls sqlglot normalises: datediff(end, start), split's
        # default limit, get_json_object's path as written.
        exp.DateDiff: lambda self, e: f"datediff({self.sql(e, 'this')}, {self.sql(e, 'expression')})",
        exp.RegexpSplit: lambda self, e: f"split({self.sql(e, 'this')}, {self.sql(e, 'expression')}, -1)",
        exp.JSONExtractScalar: lambda self, e: (
            f"get_json_object({self.sql(e, 'this')}, {e.expression.sql(dialect='duckdb').strip(chr(39))})"
        ),
    }

    def dpipe_sql(self, expression: exp.DPipe) -> str:
        return f"concat({self.sql(expression, 'this')}, {self.sql(expression, 'expression')})"


_TYPED_LITERALS = {
    exp.DataType.Type.DATE: "DATE",
    exp.DataType.Type.TIMESTAMP: "TIMESTAMP",
    exp.DataType.Type.TIMESTAMPTZ: "TIMESTAMP",
    exp.DataType.Type.TIMESTAMPNTZ: "TIMESTAMP_NTZ",
}
_GENERATOR = _PrettyGenerator(normalize_functions="lower", pretty=False)


def spark_column_name(expression: exp.Expr, /) -> str | None:
    """Spark's name for an unnamed projection, or None to keep the local engine's."""
    if any(isinstance(node, _KEEP_LOCAL_NAME) for node in expression.walk()):
        return None
    if isinstance(expression, exp.Column | exp.Star):
        return None  # the engine already names it by the column
    return str(_GENERATOR.generate(expression.copy(), copy=False))


def name_result_columns(tree: exp.Expr, /) -> None:
    """Alias the unnamed projections of the statement's own result (the first SELECT of a union)."""
    select = tree
    while isinstance(select, exp.SetOperation):
        select = select.this
    if isinstance(select, exp.Subquery):
        select = select.unnest()
    if not isinstance(select, exp.Select):
        return
    for projection in list(select.expressions):
        if isinstance(projection, exp.Alias):
            continue
        name = spark_column_name(projection)
        if name is not None:
            projection.replace(exp.alias_(projection.copy(), exp.to_identifier(name, quoted=True)))
