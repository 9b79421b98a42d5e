"""Turn a guarded Databricks query into DuckDB SQL for the local engine.

:func:`to_duckdb` replaces every real table with the FROM item the engine chooses for it (a view
name, or ``read_parquet([...])`` over the files of the requested Delta version), names
unnamed result columns as Databricks does (:mod:`servicetsunami.sql.naming`), fixes the constructs
sqlglot transpiles wrongly (:mod:`servicetsunami.sql.spark_functions`,
:mod:`servicetsunami.sql.duckdb_rewrites`) and generates DuckDB SQL.

The engine's FROM items are not parsed: each table becomes a quoted placeholder identifier carrying
a random token, and after generation the placeholder is replaced with the resolver's text verbatim.
That keeps the engine's text exactly as written (sqlglot need not round-trip every DuckDB option),
and the random token cannot be guessed by whoever wrote the query.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable

from sqlglot import exp
from sqlglot.errors import ErrorLevel, UnsupportedError

from servicetsunami.errors import QueryRefused
from servicetsunami.sql.duckdb_rewrites import apply_rewrites
from servicetsunami.sql.guard import GuardedQuery
from servicetsunami.sql.naming import name_result_columns
from servicetsunami.sql.qualify import TableReference, table_reference, walk_tables
from servicetsunami.sql.spark_functions import apply_function_rewrites

__all__ = ["to_duckdb"]

Resolver = Callable[[TableReference], str]


def to_duckdb(query: GuardedQuery, /, *, resolve: Resolver) -> str:
    """DuckDB SQL for a guarded ``select`` or ``explain`` query.

    ``resolve`` returns the FROM-item text for a table reference (time travel included); it is
    called once per distinct reference, on every call (the files of a table change with each
    write). A table keeps the user's alias; without one it is aliased by its bare name so
    ``orders.id`` still binds. Raises ``ValueError`` for other kinds and
    :class:`~servicetsunami.errors.QueryRefused` for a construct DuckDB cannot express.
    """
    if query.kind not in ("select", "explain"):
        raise ValueError(f"only select and explain queries run as SQL, not {query.kind!r}")
    sql, placeholders = _template(query)
    for quoted, ref in placeholders:
        sql = sql.replace(quoted, resolve(ref))
    return sql


# The generated text with placeholders depends only on the guarded query, so it is kept for the
# last queries seen (the guard hands back the same GuardedQuery for the same text); the FROM items
# are resolved afresh on every call. Entries hold their query, so an id is never reused meanwhile.
_TEMPLATES_KEPT = 512
_templates: OrderedDict[int, tuple[GuardedQuery, str, tuple[tuple[str, TableReference], ...]]] = OrderedDict()
_templates_lock = threading.Lock()


def _template(query: GuardedQuery) -> tuple[str, tuple[tuple[str, TableReference], ...]]:
    with _templates_lock:
        kept = _templates.get(id(query))
        if kept is not None and kept[0] is query:
            _templates.move_to_end(id(query))
            return kept[1], kept[2]
    tree = query.statement.copy()
    refs = _replace_tables(tree)
    if query.kind == "select":
        name_result_columns(tree)
    apply_function_rewrites(tree)
    apply_rewrites(tree)
    try:
        sql = tree.sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as exc:
        raise QueryRefused(f"this query uses something the local engine cannot run: {_first_line(str(exc))}") from exc
    except RecursionError as exc:
        raise QueryRefused("the query is nested too deeply to run; simplify it") from exc
    placeholders = []
    for placeholder, ref in refs.items():
        quoted = exp.to_identifier(placeholder, quoted=True).sql(dialect="duckdb")
        if quoted not in sql:
            raise RuntimeError(f"table placeholder {placeholder!r} vanished during transpilation")
        placeholders.append((quoted, ref))
    if query.kind == "explain":
        sql = f"EXPLAIN {sql}"
    with _templates_lock:
        _templates[id(query)] = (query, sql, tuple(placeholders))
        while len(_templates) > _TEMPLATES_KEPT:
            _templates.popitem(last=False)
    return sql, tuple(placeholders)


def _replace_tables(tree: exp.Expr) -> dict[str, TableReference]:
    """Every real table becomes a placeholder; returns placeholder -> reference, in text order."""
    tables = [table for table, is_cte in walk_tables(tree) if not is_cte and table.args.get("catalog")]
    refs = [table_reference(table) for table in tables]
    _unqualify_columns(tree, refs)
    token = secrets.token_hex(8)
    names: dict[TableReference, str] = {}
    for table, ref in zip(tables, refs, strict=True):
        if ref not in names:
            names[ref] = f"__tsunami_{token}_{len(names)}"
        table.set("this", exp.to_identifier(names[ref], quoted=True))
        table.set("db", None)
        table.set("catalog", None)
        table.set("version", None)  # the resolver chooses the version
        if not isinstance(table.args.get("alias"), exp.TableAlias):
            table.set("alias", exp.TableAlias(this=exp.to_identifier(ref.table.name)))
    return {name: ref for ref, name in names.items()}


def _unqualify_columns(tree: exp.Expr, refs: list[TableReference]) -> None:
    """``bronze.orders.id`` becomes ``orders.id``: the table is aliased by its bare name."""
    known = {(ref.table.schema, ref.table.name): ref.table.catalog for ref in refs}
    for column in tree.find_all(exp.Column):
        db = column.args.get("db")
        if not isinstance(db, exp.Identifier) or not column.table:
            continue
        catalog = known.get((db.name.lower(), column.table.lower()))
        written = column.args.get("catalog")
        if catalog is None or (isinstance(written, exp.Identifier) and written.name.lower() != catalog):
            continue
        column.set("db", None)
        column.set("catalog", None)


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else "unsupported construct"
