"""Table names: qualify every real table reference to ``catalog.schema.table`` inside one catalog.

A statement may name a table as ``t`` (the default schema), ``s.t`` or ``c.s.t``; whatever the user
wrote, the statement the guard hands on names every real table with all three parts, lower-cased
and checked with :func:`~servicetsunami.tenancy.check_identifier`. A three-part name in another
catalog is a :class:`~servicetsunami.errors.PermissionDenied`, wherever it hides (subquery, CTE body,
join, ``EXISTS``, ``IN (...)``).

References to a CTE are not tables: an unqualified name is a CTE reference when a ``WITH`` clause
in scope defines it (the CTE's own body sees it only for ``WITH RECURSIVE``), exactly as Databricks
resolves it. Table names inside optimizer hints (``/*+ BROADCAST(t) */``) name relations already in
the query, so they are neither checked nor counted.

Time travel (``VERSION AS OF n``, ``TIMESTAMP AS OF '...'``) is read from sqlglot's ``exp.Version``
node on the table and captured in :class:`TableReference`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.tokenizer_core import TokenType

from servicetsunami.errors import InvalidIdentifier, PermissionDenied, QueryRefused
from servicetsunami.tenancy import TableRef, check_identifier

FILE_PATH_MESSAGE = "file paths are not allowed; query a table in your catalog"
METADATA_MESSAGE = "catalog metadata is available through list_tables and describe_table"

#: Schemas (and catalogs) that hold engine or catalog metadata rather than tenant data.
METADATA_NAMES = frozenset({"information_schema", "system", "pg_catalog"})

#: Spark's ``format.`path``` data source shorthand, e.g. ``parquet.`/data/x```.
FILE_FORMATS = frozenset({"parquet", "csv", "json", "delta", "orc", "avro", "text", "binaryfile", "iceberg", "xml"})

_TIMESTAMP_RE = re.compile(r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)?")


@dataclass(frozen=True, slots=True)
class TableReference:
    """One real table a statement reads, with the time-travel clause it was read with."""

    table: TableRef  # fully qualified, inside the caller's catalog
    version: int | None = None  # VERSION AS OF n
    timestamp: str | None = None  # TIMESTAMP AS OF '...' (the literal's text)


@dataclass(frozen=True, slots=True)
class NamePart:
    """One dotted part of a name as the user wrote it."""

    text: str
    quoted: bool = False


def qualify_name(parts: Sequence[NamePart], /, *, catalog: str, default_schema: str, what: str = "table") -> TableRef:
    """Resolve ``t``, ``s.t`` or ``c.s.t`` to a :class:`TableRef` inside ``catalog``."""
    _refuse_paths(parts)
    if not parts or len(parts) > 3:
        joined = ".".join(p.text for p in parts)
        raise InvalidIdentifier(f"{what} name {joined!r} must be table, schema.table or catalog.schema.table")
    names = [p.text.lower() for p in parts]
    if any(name in METADATA_NAMES for name in names[:-1]):
        raise QueryRefused(METADATA_MESSAGE)
    if len(names) == 3:
        check_catalog(names[0], catalog=catalog)
    schema = names[-2] if len(names) >= 2 else default_schema
    check_identifier(schema, what="schema")
    check_identifier(names[-1], what=f"{what} name")
    return TableRef(catalog, schema, names[-1])


def qualify_schema(parts: Sequence[NamePart], /, *, catalog: str) -> str:
    """Resolve ``s`` or ``c.s`` to a schema name inside ``catalog``."""
    _refuse_paths(parts)
    if not parts or len(parts) > 2:
        joined = ".".join(p.text for p in parts)
        raise InvalidIdentifier(f"schema name {joined!r} must be schema or catalog.schema")
    names = [p.text.lower() for p in parts]
    if any(name in METADATA_NAMES for name in names):
        raise QueryRefused(METADATA_MESSAGE)
    if len(names) == 2:
        check_catalog(names[0], catalog=catalog)
    return check_identifier(names[-1], what="schema")


def check_catalog(name: str, /, *, catalog: str) -> None:
    if name.lower() != catalog:
        raise PermissionDenied(f"catalog {name.lower()!r} is not yours; your catalog is {catalog!r}")


def _refuse_paths(parts: Sequence[NamePart]) -> None:
    for part in parts:
        text = part.text
        if part.quoted and (any(c in text for c in "/\\:.") or text.startswith("~")):
            raise QueryRefused(FILE_PATH_MESSAGE)
    if len(parts) >= 2 and parts[-1].quoted and parts[-2].text.lower() in FILE_FORMATS:
        raise QueryRefused(FILE_PATH_MESSAGE)


def table_name_parts(table: exp.Table, /) -> list[NamePart]:
    """The dotted parts of a table node's name, outermost first (``a.b.c.d`` gives four)."""
    parts: list[NamePart] = []
    for key in ("catalog", "db"):
        ident = table.args.get(key)
        if isinstance(ident, exp.Identifier):
            parts.append(_part(ident))
    this = table.this
    # Names with more than three parts arrive as a Dot chain in ``this``.
    parts.extend(_part(i) for i in _flatten_dot(this))
    return parts


def _flatten_dot(node: exp.Expr | None) -> list[exp.Identifier]:
    if isinstance(node, exp.Identifier):
        return [node]
    if isinstance(node, exp.Dot):
        return _flatten_dot(node.this) + _flatten_dot(node.expression)
    return []


def _part(ident: exp.Identifier) -> NamePart:
    return NamePart(ident.name, quoted=bool(ident.args.get("quoted")))


def is_named_table(table: exp.Table, /) -> bool:
    """True for ``FROM name`` (as opposed to ``FROM some_function(...)``)."""
    return isinstance(table.this, (exp.Identifier, exp.Dot))


def walk_tables(root: exp.Expr, /) -> Iterator[tuple[exp.Table, bool]]:
    """Yield every table node under ``root`` with whether it refers to a CTE in scope.

    Nodes come in tree order; hints are skipped (see the module docstring).
    """
    yield from _walk(root, frozenset())


def _walk(root: exp.Expr, visible: frozenset[str]) -> Iterator[tuple[exp.Table, bool]]:
    # Iterative, so a long chain of ANDs or ORs does not exhaust Python's recursion limit.
    stack: list[tuple[exp.Expr, frozenset[str]]] = [(root, visible)]
    while stack:
        node, scope = stack.pop()
        if isinstance(node, exp.Hint):
            continue
        if isinstance(node, exp.Table):
            is_cte = (
                is_named_table(node)
                and not node.args.get("db")
                and not node.args.get("catalog")
                and node.name.lower() in scope
            )
            yield node, is_cte
        children: list[tuple[exp.Expr, frozenset[str]]] = []
        with_ = node.args.get("with_")
        if isinstance(with_, exp.With):
            recursive = bool(with_.args.get("recursive"))
            for cte in with_.expressions:
                name = cte.alias_or_name.lower()
                children.append((cte.this, scope | {name} if recursive else scope))
                scope = scope | {name}
        for key, value in node.args.items():
            if key == "with_":
                continue
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, exp.Expr):
                    children.append((child, scope))
        stack.extend(reversed(children))


def time_travel(table: exp.Table, /) -> tuple[int | None, str | None]:
    """Read ``VERSION AS OF n`` / ``TIMESTAMP AS OF '...'`` from a table node."""
    version = table.args.get("version")
    if version is None:
        return None, None
    if not isinstance(version, exp.Version):
        raise QueryRefused("this time-travel clause is not supported; use VERSION AS OF n")
    kind = str(version.args.get("kind") or "").upper()
    which = str(version.this or "").upper()
    value = version.args.get("expression")
    if kind != "AS OF" or which not in ("VERSION", "TIMESTAMP"):
        raise QueryRefused("only VERSION AS OF n and TIMESTAMP AS OF '<timestamp>' are supported for time travel")
    if which == "VERSION":
        if isinstance(value, exp.Literal) and not value.is_string and value.name.isdigit():
            return int(value.name), None
        raise QueryRefused("VERSION AS OF needs a whole number, such as VERSION AS OF 3")
    if isinstance(value, exp.Literal) and value.is_string and _TIMESTAMP_RE.fullmatch(value.name.strip()):
        return None, value.name.strip()
    raise QueryRefused("TIMESTAMP AS OF needs a literal timestamp, such as TIMESTAMP AS OF '2024-01-01 10:00:00'")


def table_reference(table: exp.Table, /) -> TableReference:
    """The :class:`TableReference` of an already qualified table node."""
    catalog = table.args.get("catalog")
    db = table.args.get("db")
    if not (isinstance(catalog, exp.Identifier) and isinstance(db, exp.Identifier)):
        raise ValueError(f"table {table.sql()!r} is not qualified; run it through guard_query first")
    version, timestamp = time_travel(table)
    return TableReference(TableRef(catalog.name, db.name, table.name), version, timestamp)


def qualify_tables(root: exp.Expr, /, *, catalog: str, default_schema: str) -> tuple[TableReference, ...]:
    """Qualify every real table under ``root`` in place; return them deduplicated, in text order."""
    found: list[tuple[int, int, TableReference]] = []
    for index, (table, is_cte) in enumerate(list(walk_tables(root))):
        if not is_named_table(table):
            continue  # table functions are the policy's business, checked before this runs
        alias = table.args.get("alias")
        if isinstance(alias, exp.TableAlias) and isinstance(alias.this, exp.Parameter):
            raise QueryRefused("the table@version syntax is not supported; use VERSION AS OF n")
        if is_cte:
            if table.args.get("version") is not None:
                raise QueryRefused(f"time travel applies to tables, not to the CTE {table.name!r}")
            continue
        position = _position(table)
        ref = qualify_name(table_name_parts(table), catalog=catalog, default_schema=default_schema)
        version, timestamp = time_travel(table)
        table.set("this", identifier(ref.name))
        table.set("db", identifier(ref.schema))
        table.set("catalog", identifier(ref.catalog))
        found.append((position, index, TableReference(ref, version, timestamp)))
    ordered = [ref for _, _, ref in sorted(found, key=lambda item: (item[0], item[1]))]
    return tuple(dict.fromkeys(ordered))


def _position(table: exp.Table) -> int:
    """Character offset of the table's name in the statement text (tree order when unknown)."""
    idents = [i for i in (table.args.get("catalog"), table.args.get("db"), table.this) if i is not None]
    starts = [i.meta.get("start") for i in idents if isinstance(i, exp.Expr)]
    known = [s for s in starts if isinstance(s, int)]
    return min(known) if known else 1 << 62


@functools.lru_cache(maxsize=4096)  # bounded: names come from users
def _needs_quotes(name: str) -> bool:
    # A checked name is safe unquoted unless the tokenizer reads it as a keyword (``order``).
    tokens = Dialect.get_or_raise("databricks").tokenize(name)
    return len(tokens) != 1 or tokens[0].token_type != TokenType.VAR


def identifier(name: str, /) -> exp.Identifier:
    """An identifier for a checked name, quoted only when it collides with a SQL keyword."""
    return exp.Identifier(this=name, quoted=_needs_quotes(name))
