"""The tables one SQL text reads and writes, resolved to the tenant's catalog.

Parsed with sqlglot in the Databricks dialect. Parts of the text only known at run time (f-string
fields, ``.format`` fields, ``${widget}`` and ``{{param}}`` substitutions) arrive here as placeholder
identifiers (:func:`placeholder`); a table whose name holds one is reported as written, marked
dynamic, and never resolved.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from servicetsunami.errors import InvalidIdentifier, PermissionDenied, QueryRefused
from servicetsunami.sql.qualify import NamePart, is_named_table, qualify_name, table_name_parts, walk_tables

MAX_SQL_CHARS = 200_000
_PLACEHOLDER = "__tsunami_dynamic_{}__"
_PLACEHOLDER_RE = re.compile(r"__tsunami_dynamic_(\d+)__")
# Databricks SQL substitutions: ${name} (widgets), {{name}} (job parameters).
_SUBSTITUTION_RE = re.compile(r"\$\{[^}\n]*\}|\{\{[^}\n]*\}\}")
_WIDGET_RE = re.compile(
    r"^[ \t]*CREATE[ \t]+WIDGET[ \t]+(TEXT|DROPDOWN|COMBOBOX|MULTISELECT)[ \t]+`?(\w+)`?"
    r"(?:[ \t]+DEFAULT[ \t]+'([^'\n]*)')?[^;\n]*;?",
    re.IGNORECASE | re.MULTILINE,
)


def placeholder(n: int, /) -> str:
    return _PLACEHOLDER.format(n)


@dataclass
class SqlTable:
    name: str  # catalog.schema.table when resolved, else as written (dynamic parts as {expr})
    access: Literal["read", "write"]
    line: int  # 1-based, within the SQL text
    dynamic: bool = False
    other_catalog: bool = False
    invalid: str | None = None  # why the name cannot be resolved


@dataclass
class SqlWidget:
    kind: str
    name: str
    default: str | None
    line: int


@dataclass
class SqlScan:
    tables: list[SqlTable] = field(default_factory=list)
    widgets: list[SqlWidget] = field(default_factory=list)
    error: str | None = None
    statements: list[str] = field(default_factory=list)  # the kind of each statement (select, insert, ...)


def scan_sql(
    text: str,
    /,
    *,
    catalog: str,
    default_schema: str = "bronze",
    dynamic: dict[str, str] | None = None,
    temp_views: set[str] | None = None,
) -> SqlScan:
    """Tables read and written by ``text``; ``dynamic`` maps placeholder ids to what they stand for;
    ``temp_views`` holds the temporary views defined so far (not tables), and gets those ``text``
    defines."""
    out = SqlScan()
    views = temp_views if temp_views is not None else set()
    fields = dict(dynamic or {})
    if len(text) > MAX_SQL_CHARS:
        out.error = f"the SQL is longer than {MAX_SQL_CHARS} characters and was not analysed"
        return out

    def widget(match: re.Match[str]) -> str:
        line = text.count("\n", 0, match.start()) + 1
        out.widgets.append(SqlWidget(match.group(1).lower(), match.group(2), match.group(3), line))
        return "\n" * match.group(0).count("\n")

    text = _WIDGET_RE.sub(widget, text)

    def substitute(match: re.Match[str]) -> str:
        key = str(len(fields) + 1000)
        fields[key] = match.group(0)
        return placeholder(int(key))

    text = _SUBSTITUTION_RE.sub(substitute, text)
    try:
        statements = [s for s in sqlglot.parse(text, read="databricks") if s is not None]
    except (SqlglotError, RecursionError, ValueError) as exc:
        out.error = _first_line(exc)
        return out
    for statement in statements:
        targets = _write_targets(statement)
        seen = {id(t) for t in targets}
        if _is_temp_view(statement):
            views.update(t.name.lower() for t in targets)
            targets = []
        else:
            out.statements.append(statement.key)
        for target in targets:
            out.tables.append(_table(target, "write", catalog, default_schema, fields))
        for table, is_cte in walk_tables(statement):
            if is_cte or id(table) in seen or not is_named_table(table):
                continue
            if not table.args.get("db") and not table.args.get("catalog") and table.name.lower() in views:
                continue
            out.tables.append(_table(table, "read", catalog, default_schema, fields))
    return out


_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*){0,3}$")


def scan_name(
    text: str,
    /,
    access: Literal["read", "write"],
    *,
    catalog: str,
    default_schema: str = "bronze",
    dynamic: dict[str, str] | None = None,
) -> SqlTable | None:
    """The table a name given to ``spark.table`` or ``saveAsTable`` means; None when it is no name."""
    name = text.strip()
    if _PLAIN_NAME.match(name):  # most names: no need to parse
        parts = [NamePart(p) for p in name.split(".")]
        return _resolve(parts, access, 1, catalog, default_schema, dict(dynamic or {}))
    statement = f"SELECT * FROM {name}" if access == "read" else f"INSERT INTO {name} SELECT 1"
    scanned = scan_sql(statement, catalog=catalog, default_schema=default_schema, dynamic=dynamic)
    if scanned.error is not None or len(scanned.tables) != 1:
        return None
    return scanned.tables[0]


def _write_targets(statement: exp.Expr) -> list[exp.Table]:
    target: exp.Expr | None = None
    if isinstance(statement, (exp.Insert, exp.Merge, exp.Update, exp.Delete)) or (
        isinstance(statement, (exp.Create, exp.Drop))
        and str(statement.args.get("kind", "")).upper()
        in (
            "TABLE",
            "VIEW",
        )
    ):
        target = statement.this
    elif isinstance(statement, exp.TruncateTable):
        return [t for t in statement.expressions if isinstance(t, exp.Table)]
    if isinstance(statement, exp.Drop) and target is None:
        return [t for t in statement.args.get("tables") or [] if isinstance(t, exp.Table)]
    if isinstance(target, exp.Schema):
        target = target.this
    return [target] if isinstance(target, exp.Table) else []


def _is_temp_view(statement: exp.Expr) -> bool:
    properties = statement.args.get("properties")
    return (
        isinstance(statement, exp.Create)
        and isinstance(properties, exp.Properties)
        and any(isinstance(p, exp.TemporaryProperty) for p in properties.expressions)
    )


def _table(
    table: exp.Table, access: Literal["read", "write"], catalog: str, default_schema: str, fields: dict[str, str]
) -> SqlTable:
    return _resolve(table_name_parts(table), access, _line(table), catalog, default_schema, fields)


def _resolve(
    parts: list[NamePart],
    access: Literal["read", "write"],
    line: int,
    catalog: str,
    default_schema: str,
    fields: dict[str, str],
) -> SqlTable:
    written = ".".join(p.text for p in parts)
    if _PLACEHOLDER_RE.search(written):
        shown = _PLACEHOLDER_RE.sub(lambda m: fields.get(m.group(1), "{?}"), written)
        return SqlTable(shown, access, line, dynamic=True)
    try:
        ref = qualify_name(parts, catalog=catalog, default_schema=default_schema)
    except PermissionDenied:
        return SqlTable(written.lower(), access, line, other_catalog=True)
    except (InvalidIdentifier, QueryRefused) as exc:
        return SqlTable(written, access, line, invalid=exc.message)
    return SqlTable(f"{ref.catalog}.{ref.schema}.{ref.name}", access, line)


def _line(table: exp.Table) -> int:
    for key in ("catalog", "db"):
        ident = table.args.get(key)
        if isinstance(ident, exp.Expr) and isinstance(ident.meta.get("line"), int):
            return int(ident.meta["line"])
    this = table.this
    if isinstance(this, exp.Expr) and isinstance(this.meta.get("line"), int):
        return int(this.meta["line"])
    return 1


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0][:200] if lines else type(exc).__name__) or type(exc).__name__
