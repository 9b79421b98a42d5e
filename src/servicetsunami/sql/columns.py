"""Column lineage that fails closed: for each output column of a query, the table columns it is
computed from, or ``None`` when that cannot be proven.

:func:`output_sources` qualifies a guarded statement with the tables' schemas (sqlglot's
``qualify``: ``*`` expanded, every column tied to its table or alias), builds its scopes and walks
each output expression back to real table columns, through

- any expression (functions, casts, ``CASE``, struct fields, window functions, aggregates);
- derived tables, CTEs and scalar or correlated subqueries (a subquery inside an expression counts
  every column it reads, not only the ones it returns);
- set operations (the column at the same position in every branch);
- generators: ``LATERAL VIEW explode(...)``, ``LATERAL (...)``, ``UNNEST`` (a generated column is
  computed from every column its generator reads).

Whatever the walk cannot place (a ``*`` left unexpanded, a column tied to no known relation, a
relation kind it does not know, a number of outputs that differs from what the engine returned, or
sqlglot failing) is ``None`` for that column, or for every column: callers treat ``None`` as "may
be anything", which is what makes masking on top of it fail closed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, build_scope

DIALECT = "databricks"

#: A real table column: (``schema.table``, column), both lower-case.
SourceColumn = tuple[str, str]
#: ``{schema: {table: {column: type}}}`` for the tables a statement reads (one catalog).
TableSchemas = Mapping[str, Mapping[str, Mapping[str, str]]]

_MAX_SCOPES = 2000


class _Untraceable(Exception):
    """A column whose sources cannot be proven."""


def output_sources(
    statement: exp.Expr, /, *, catalog: str, schemas: TableSchemas, outputs: int
) -> list[frozenset[SourceColumn] | None]:
    """The source columns of each of the ``outputs`` columns ``statement`` returns (``None``: unknown).

    ``statement`` is a guarded query (every table qualified into ``catalog``); it is not modified.
    Answers are kept per statement object (the guard hands out the same one for the same text, and
    statements are read-only), catalog, table columns and output count: qualifying a statement costs
    more than the small queries it guards."""
    key = (
        id(statement),
        catalog,
        tuple(sorted((s, t, tuple(c.items())) for s, tables in schemas.items() for t, c in tables.items())),
        outputs,
    )
    with _CACHE_LOCK:
        known = _CACHE.get(key)
    if known is not None and known[0] is statement:  # the same object, not another at a reused address
        return list(known[1])
    found = _output_sources(statement, catalog=catalog, schemas=schemas, outputs=outputs)
    with _CACHE_LOCK:
        _CACHE[key] = (statement, tuple(found))  # holding the statement keeps its id from being reused
        while len(_CACHE) > _CACHE_SIZE:
            del _CACHE[next(iter(_CACHE))]  # the oldest
    return found


_CACHE_SIZE = 512
_CACHE: dict[tuple[object, ...], tuple[exp.Expr, tuple[frozenset[SourceColumn] | None, ...]]] = {}
_CACHE_LOCK = threading.Lock()


def _output_sources(
    statement: exp.Expr, /, *, catalog: str, schemas: TableSchemas, outputs: int
) -> list[frozenset[SourceColumn] | None]:
    try:
        qualified = qualify(
            statement.copy(),
            schema={catalog: {s: dict(t) for s, t in schemas.items()}},
            catalog=catalog,
            dialect=DIALECT,
            validate_qualify_columns=False,
            quote_identifiers=False,
            identify=False,
        )
        root = build_scope(qualified)
    except (SqlglotError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return [None] * outputs
    if root is None or sum(1 for _ in root.traverse()) > _MAX_SCOPES:
        return [None] * outputs
    walker = _Walker()
    try:
        projections = _projections(root)
    except _Untraceable:
        return [None] * outputs
    if len(projections) != outputs:
        return [None] * outputs
    out: list[frozenset[SourceColumn] | None] = []
    for index in range(outputs):
        try:
            out.append(frozenset(walker.output(root, index)))
        except (_Untraceable, RecursionError):
            out.append(None)
    return out


def _projections(scope: Scope) -> list[exp.Expr]:
    """The output expressions of a query scope (the left-most branch of a set operation)."""
    expression = scope.expression
    if isinstance(expression, exp.SetOperation):
        if not scope.set_operation_scopes:
            raise _Untraceable
        return _projections(scope.set_operation_scopes[0])
    if isinstance(expression, exp.Select):
        selects = list(expression.selects)
        if any(isinstance(s, exp.Star) or (isinstance(s, exp.Column) and s.is_star) for s in selects):
            raise _Untraceable
        return selects
    raise _Untraceable


class _Walker:
    def __init__(self) -> None:
        self._active: set[tuple[int, str]] = set()

    def output(self, scope: Scope, index: int) -> set[SourceColumn]:
        """The sources of output ``index`` of a query scope."""
        if isinstance(scope.expression, exp.SetOperation):
            found: set[SourceColumn] = set()
            for branch in scope.set_operation_scopes:
                found |= self.output(branch, index)
            return found
        projections = _projections(scope)
        if index >= len(projections):
            raise _Untraceable
        return self.expression(scope, projections[index])

    def named_output(self, scope: Scope, name: str) -> set[SourceColumn]:
        """The sources of the output called ``name`` of a derived table or CTE."""
        names = [p.alias_or_name.lower() for p in _projections(scope)]
        if name.lower() not in names:
            raise _Untraceable
        key = (id(scope), name.lower())
        if key in self._active:  # a recursive CTE reading itself: its other branches say the rest
            return set()
        self._active.add(key)
        try:
            return self.output(scope, names.index(name.lower()))
        finally:
            self._active.discard(key)

    def expression(self, scope: Scope, node: exp.Expr) -> set[SourceColumn]:
        """Every table column ``node`` (an expression of ``scope``) reads, subqueries included."""
        found: set[SourceColumn] = set()
        for column, nested in _columns_and_queries(node):
            if nested is not None:
                found |= self.whole_query(scope, nested)
            elif column is not None and not _is_lambda_parameter(column):
                found |= self.column(scope, column)
        return found

    def whole_query(self, scope: Scope, query: exp.Expr) -> set[SourceColumn]:
        """Every column a nested query reads anywhere (and the outer columns it correlates on)."""
        inner_query = query.unnest() if isinstance(query, exp.Subquery) else query
        nested = next((s for s in scope.traverse() if s.expression is query or s.expression is inner_query), None)
        if nested is None:
            raise _Untraceable
        found: set[SourceColumn] = set()
        for inner in nested.traverse():
            for column in inner.columns:
                if not _is_lambda_parameter(column):
                    found |= self.column(inner, column)
        return found

    def column(self, scope: Scope, column: exp.Column) -> set[SourceColumn]:
        """The sources of one column reference, looked up in ``scope`` and then the scopes around it."""
        table = column.table
        if not table:
            raise _Untraceable
        owner: Scope | None = scope
        while owner is not None and table not in owner.sources:
            owner = owner.parent
        if owner is None:
            raise _Untraceable
        source = owner.sources[table]
        if isinstance(source, exp.Table):
            if not source.name or not source.db:
                raise _Untraceable
            return {(f"{source.db.lower()}.{source.name.lower()}", column.name.lower())}
        if isinstance(source, Scope):
            if isinstance(source.expression, exp.Lateral | exp.Unnest):
                return self.whole_query(source, source.expression)
            if isinstance(source.expression, exp.Query):
                return self.named_output(source, column.name)
            if isinstance(source.expression, exp.Values):
                return self.expression(source, source.expression)
        raise _Untraceable


def _columns_and_queries(node: exp.Expr) -> Iterator[tuple[exp.Column | None, exp.Expr | None]]:
    """The column references of ``node`` in its own scope, and the nested queries (not entered)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if current is not node and isinstance(current, exp.Query):
            yield None, current
            continue
        if isinstance(current, exp.Column):
            yield current, None
            continue
        if isinstance(current, exp.Star):
            if isinstance(current.parent, exp.Count):
                continue  # count(*) reads no value
            raise _Untraceable  # any other * inside an expression is not placed
        stack.extend(current.iter_expressions())


def _is_lambda_parameter(column: exp.Column) -> bool:
    if column.table:
        return False
    parent = column.parent
    while parent is not None:
        if isinstance(parent, exp.Lambda) and any(
            isinstance(p, exp.Identifier | exp.Column) and p.name == column.name for p in parent.expressions
        ):
            return True
        parent = parent.parent
    return False
