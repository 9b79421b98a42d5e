"""One Python cell read with :mod:`ast`: imports, tables (``spark.sql``, ``spark.table``,
``spark.read.table``, ``saveAsTable``, ``insertInto``, ``writeTo``), file paths, widgets, ``dbutils``,
network calls, and what a reviewer should see (secrets, paths, ``collect()`` on a whole table).

Nothing is executed. Names assigned a string or a DataFrame earlier in the notebook are followed,
so ``q = "SELECT ..."; spark.sql(q)`` and ``df = spark.table(t); df.collect()`` are understood.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from servicetsunami.services.bundles import secrets_scan
from servicetsunami.services.bundles.python_strings import has_placeholder, text_of
from servicetsunami.services.bundles.report import Collector, Widget
from servicetsunami.services.bundles.sql_scan import SqlScan, scan_name, scan_sql

WIDGET_KINDS = ("text", "dropdown", "combobox", "multiselect")
# What the local kernel's dbutils offers (runs/sandbox/shim.py); the rest works on Databricks only.
LOCAL_DBUTILS = frozenset(
    {"dbutils.widgets." + n for n in (*WIDGET_KINDS, "get", "getArgument", "getAll", "remove", "removeAll")}
    | {"dbutils.fs." + n for n in ("ls", "head", "put", "cp", "rm", "mkdirs")}
    | {"dbutils.notebook.exit", "dbutils.help"}
)
NETWORK_MODULES = (
    "requests",
    "httpx",
    "urllib.request",
    "urllib3",
    "http.client",
    "socket",
    "aiohttp",
    "ftplib",
    "smtplib",
)
WRITER_PATH_METHODS = frozenset({"save", "parquet", "csv", "json", "orc", "text", "load", "avro", "xml"})
LIMITING = frozenset({"limit", "take", "head", "first", "count", "agg", "groupBy", "groupby", "sample", "tail"})
_EXTERNAL_RE = re.compile(r"^(?:/dbfs/|dbfs:/|s3a?://|s3n://|abfss?://|wasbs?://|gs://|adl://|file:/|/Volumes/)", re.I)
_LOCAL_RE = re.compile(r"^/(?:[A-Za-z0-9_.\-]+/)+[A-Za-z0-9_.\-*]*$")
# SQL whose result is small whatever the table's size: a LIMIT, a GROUP BY or an aggregate.
_BOUNDED_SQL_RE = re.compile(r"\blimit\s+\d+|\bgroup\s+by\b|\b(?:count|sum|avg|min|max)\s*\(", re.I)
MAX_CHAIN = 32


@dataclass
class State:
    """What earlier cells left behind, as far as a reader can tell without running them."""

    catalog: str
    strings: dict[str, str] = field(default_factory=dict)
    frames: dict[str, list[ast.expr]] = field(default_factory=dict)  # every value a name was given
    temp_views: set[str] = field(default_factory=set)
    aliases: dict[str, str] = field(default_factory=dict)  # local name -> module.path


def scan_python(source: str, /, *, cell: int, offset: int, state: State, out: Collector) -> None:
    """Scan ``source`` (magic lines already blanked); ``offset`` is added to every line number."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        line = getattr(exc, "lineno", None)
        out.finding(
            "syntax_error",
            "error",
            "this Python cell does not parse, so it was not analysed",
            cell,
            (line + offset) if isinstance(line, int) else None,
        )
        return
    scanner = _Scanner(state, out, cell, offset)
    nodes = [
        n
        for n in ast.walk(tree)
        if isinstance(n, (ast.Import, ast.ImportFrom, ast.Assign, ast.Call, ast.Constant, ast.keyword, ast.Dict))
    ]
    nodes.sort(key=lambda n: (getattr(n, "lineno", 0), getattr(n, "col_offset", 0)))
    for node in nodes:
        scanner.visit(node)


class _Scanner:
    def __init__(self, state: State, out: Collector, cell: int, offset: int) -> None:
        self.state = state
        self.out = out
        self.cell = cell
        self.offset = offset
        self.sql_args: set[int] = set()  # ids of constants that are SQL text, not paths

    def line(self, node: ast.AST) -> int | None:
        lineno = getattr(node, "lineno", None)
        return lineno + self.offset if isinstance(lineno, int) else None

    def visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                self.out.module(alias.name.split(".")[0], self.cell)
                self.state.aliases[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                self.out.module(node.module.split(".")[0], self.cell)
                for alias in node.names:
                    self.state.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Assign):
            self.assign(node)
        elif isinstance(node, ast.Call):
            self.call(node)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            self.constant(node)
        elif isinstance(node, ast.keyword) and node.arg:
            self.secret_name(node.arg, node.value, node)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    self.secret_name(key.value, value, key)

    # -- assignments ------------------------------------------------------------------------------

    def assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            if isinstance(target, ast.Name):
                text, _ = self.text_of(node.value)
                if text is not None and not has_placeholder(text):
                    self.state.strings[target.id] = text
                else:
                    self.state.strings.pop(target.id, None)
                self.state.frames.setdefault(target.id, []).append(node.value)
            self.secret_target(target, node.value)

    def secret_target(self, target: ast.expr, value: ast.expr) -> None:
        if isinstance(target, ast.Name):
            self.secret_name(target.id, value, target)
        elif isinstance(target, ast.Attribute):
            self.secret_name(target.attr, value, target)

    def secret_name(self, name: str, value: ast.expr, where: ast.AST) -> None:
        if (
            isinstance(value, ast.Constant)
            and isinstance(value.value, str)
            and secrets_scan.is_secret_assignment(name, value.value)
        ):
            self.out.finding(
                "hard_coded_secret",
                "error",
                f"{name!r} is set to a literal; read it from a secret scope or the environment instead",
                self.cell,
                self.line(where),
            )

    # -- constants --------------------------------------------------------------------------------

    def constant(self, node: ast.Constant) -> None:
        value = str(node.value)
        kind = secrets_scan.secret_kind(value)
        if kind is not None:
            self.out.finding(
                "hard_coded_secret",
                "error",
                f"a hard-coded {kind}; read it from a secret scope instead",
                self.cell,
                self.line(node),
            )
        if id(node) not in self.sql_args:
            self.path(value, node)

    def path(self, value: str, node: ast.AST) -> None:
        if len(value) > 4096 or "\n" in value:
            return
        own = f"/Volumes/{self.state.catalog}/"
        if value.startswith(own) or value.rstrip("/") == own.rstrip("/"):
            return
        if _EXTERNAL_RE.match(value) or _LOCAL_RE.match(value):
            if value not in self.out.paths:
                self.out.paths[value] = None
            self.out.finding(
                "absolute_path",
                "warning",
                "an absolute path outside the tenant's volumes; it will not resolve the same way on another "
                "workspace (use a volume path or a parameter)",
                self.cell,
                self.line(node),
            )

    # -- calls ------------------------------------------------------------------------------------

    def call(self, node: ast.Call) -> None:
        root, steps = _chain(node)
        names = [s for s, _ in steps]
        head = root.id if isinstance(root, ast.Name) else None
        if not names:
            if head is not None:
                self.network_call(node, head, names)
            return
        if head == "spark":
            self.spark_call(node, names)
        elif head == "dbutils":
            self.dbutils_call(node, names)
        elif head is not None:
            self.network_call(node, head, names)
        last = names[-1]
        if last in ("saveAsTable", "insertInto"):
            self.table_arg(node, "write", last, keyword=("name", "tableName"))
        elif last == "writeTo":
            self.table_arg(node, "write", "writeTo", keyword=("table",))
        elif last in WRITER_PATH_METHODS and "write" in names and head != "spark":
            self.path_arg(node)
        elif last in ("collect", "toPandas") and not node.args:
            self.collect(node, last)
        elif last in ("createOrReplaceTempView", "createTempView", "createOrReplaceGlobalTempView") and node.args:
            name, _ = self.text_of(node.args[0])
            if name is not None:
                self.state.temp_views.add(name.lower())

    def spark_call(self, node: ast.Call, names: list[str]) -> None:
        if names == ["sql"]:
            self.spark_sql(node)
        elif names == ["table"]:
            self.table_arg(node, "read", "spark.table", keyword=("tableName",))
        elif names[0] == "read" and names[-1] == "table":
            self.table_arg(node, "read", "spark.read.table", keyword=("tableName",))
        elif names[0] == "read" and names[-1] in WRITER_PATH_METHODS:
            self.path_arg(node)

    def spark_sql(self, node: ast.Call) -> None:
        arg = node.args[0] if node.args else _keyword(node, "sqlQuery")
        if arg is None:
            return
        for const in ast.walk(arg):
            if isinstance(const, ast.Constant):
                self.sql_args.add(id(const))
        text, fields = self.text_of(arg)
        line = self.line(node)
        if text is None:
            self.out.finding(
                "dynamic_sql",
                "info",
                "spark.sql is given SQL built at run time; its tables are not known",
                self.cell,
                line,
            )
            return
        scanned = scan_sql(text, catalog=self.state.catalog, dynamic=fields, temp_views=self.state.temp_views)
        start = self.line(arg) if isinstance(arg, ast.Constant) else None
        record_sql(
            scanned,
            self.out,
            cell=self.cell,
            via="spark.sql",
            at=lambda n: start + n - 1 if start is not None else line,
        )

    def table_arg(
        self, node: ast.Call, access: Literal["read", "write"], via: str, *, keyword: tuple[str, ...]
    ) -> None:
        arg = (
            node.args[0]
            if node.args
            else next((k for k in (_keyword(node, w) for w in keyword) if k is not None), None)
        )
        if arg is None:
            return
        for const in ast.walk(arg):
            if isinstance(const, ast.Constant):
                self.sql_args.add(id(const))
        text, fields = self.text_of(arg)
        if text is None:
            self.out.finding(
                "dynamic_table",
                "info",
                f"{via} is given a table name known only at run time",
                self.cell,
                self.line(node),
            )
            return
        if access == "read" and text.strip("` ").lower() in self.state.temp_views:
            return
        found = scan_name(text, access, catalog=self.state.catalog, dynamic=fields)
        if found is None:
            self.out.finding(
                "invalid_table",
                "warning",
                f"{via} names {text[:80]!r}, which is not a table name",
                self.cell,
                self.line(node),
            )
            return
        scanned = SqlScan(tables=[found])
        if via in ("saveAsTable", "insertInto", "writeTo"):
            table = scanned.tables[0]
            schema = table.name.split(".")[-2] if table.name.count(".") == 2 and not table.dynamic else None
            if schema is not None and schema not in ("silver", "gold") and not table.other_catalog:
                self.out.finding(
                    "write_refused_locally",
                    "warning",
                    f"{via} into {table.name}: notebooks run here save into silver.<name> or gold.<name> only",
                    self.cell,
                    self.line(node),
                )
            elif via != "saveAsTable" and not table.other_catalog:
                self.out.finding(
                    "not_supported_locally",
                    "warning",
                    f"{via} runs on Databricks only; the local kernel has saveAsTable",
                    self.cell,
                    self.line(node),
                )
        record_sql(scanned, self.out, cell=self.cell, via=via, at=lambda n: self.line(node))

    def path_arg(self, node: ast.Call) -> None:
        arg = node.args[0] if node.args else _keyword(node, "path")
        if arg is None:
            return
        text, _ = self.text_of(arg)
        if text is not None and not has_placeholder(text):
            self.path(text, arg)

    def collect(self, node: ast.Call, method: str) -> None:
        source = _source_of(node, self.state.frames, self.text_of)
        if source is None:
            return
        limited, sql = source
        if limited or (sql is not None and _BOUNDED_SQL_RE.search(sql)):
            return
        self.out.finding(
            "collect_without_limit",
            "warning",
            f"{method}() brings a whole table into the kernel's memory; add .limit(n) or aggregate first",
            self.cell,
            self.line(node),
        )

    def dbutils_call(self, node: ast.Call, names: list[str]) -> None:
        dotted = "dbutils." + ".".join(names)
        self.out.dbutils.setdefault(dotted, None)
        if dotted not in LOCAL_DBUTILS:
            self.out.finding(
                "not_supported_locally",
                "warning",
                f"{dotted} works on Databricks only, not in the local kernel",
                self.cell,
                self.line(node),
            )
        if names[0] == "widgets" and len(names) == 2 and names[1] in WIDGET_KINDS:
            self.widget(node, names[1])
        elif names[0] == "widgets" and names[1:] in (["get"], ["getArgument"]) and node.args:
            name, _ = self.text_of(node.args[0])
            if name is not None and not has_placeholder(name):
                self.out.widget_reads.setdefault(name, (self.cell, self.line(node)))
        elif names[0] == "fs":
            for arg in node.args:
                text, _ = self.text_of(arg)
                if text is not None and not has_placeholder(text):
                    self.path(text, arg)

    def widget(self, node: ast.Call, kind: str) -> None:
        args = list(node.args)
        name_node = args[0] if args else _keyword(node, "name")
        default_node = args[1] if len(args) > 1 else _keyword(node, "defaultValue")
        choices_node = args[2] if len(args) > 2 else _keyword(node, "choices")
        name, _ = self.text_of(name_node) if name_node is not None else (None, {})
        if name is None or has_placeholder(name):
            self.out.finding(
                "dynamic_widget", "info", "a widget whose name is known only at run time", self.cell, self.line(node)
            )
            return
        default, _ = self.text_of(default_node) if default_node is not None else ("", {})
        choices: list[str] = []
        if isinstance(choices_node, (ast.List, ast.Tuple)):
            choices = [str(e.value) for e in choices_node.elts if isinstance(e, ast.Constant)]
        self.out.widget(
            Widget(
                name=name,
                kind=kind,
                default=None if default is None or has_placeholder(default) else default,
                choices=choices,
                cell=self.cell,
            )
        )

    def network_call(self, node: ast.Call, head: str, names: list[str]) -> None:
        module = self.state.aliases.get(head)
        if module is None:
            return
        dotted = ".".join([module, *names])
        if any(dotted == m or dotted.startswith(m + ".") for m in NETWORK_MODULES):
            self.out.network.setdefault(dotted, None)
            self.out.finding(
                "network_call",
                "warning",
                f"{dotted} reaches the network; the local sandbox has none, so this cell fails here",
                self.cell,
                self.line(node),
            )

    def text_of(self, node: ast.expr) -> tuple[str | None, dict[str, str]]:
        return text_of(node, self.state.strings)


def record_sql(scanned: SqlScan, out: Collector, *, cell: int, via: str, at: Callable[[int], int | None]) -> None:
    """Tables, widgets and findings of a :class:`~.sql_scan.SqlScan` into ``out``; ``at`` turns a line
    of the SQL text into a line of the cell."""
    if scanned.error is not None:
        out.finding("sql_parse_error", "warning", f"SQL that does not parse: {scanned.error}", cell, at(1))
    for widget in scanned.widgets:
        out.widget(Widget(name=widget.name, kind=widget.kind, default=widget.default, cell=cell))
    for table in scanned.tables:
        where = at(table.line)
        out.table(table.name, table.access, cell, where, via)
        if table.dynamic:
            out.finding("dynamic_table", "info", f"the table {table.name} is named at run time", cell, where)
        elif table.other_catalog:
            out.finding(
                "other_catalog",
                "error",
                f"{table.name} is in another catalog; only the tenant's catalog is reachable",
                cell,
                where,
            )
        elif table.invalid is not None:
            out.finding("invalid_table", "warning", table.invalid, cell, where)
    if via in ("spark.sql", "%sql") and any(k not in _READ_STATEMENTS for k in scanned.statements):
        first_write = next((t.line for t in scanned.tables if t.access == "write"), 1)
        out.finding(
            "sql_write_refused_locally",
            "warning",
            "this SQL changes data; the local engine runs SELECT, DESCRIBE and SHOW from notebooks (use saveAsTable)",
            cell,
            at(first_write),
        )


_READ_STATEMENTS = frozenset(
    {"select", "union", "except", "intersect", "describe", "show", "values", "use", "command", "cache", "set"}
)


def _chain(node: ast.expr) -> tuple[ast.expr, list[tuple[str, ast.Call | None]]]:
    """``a.b(x).c(y)`` as ``(a, [(b, call), (c, call)])``."""
    steps: list[tuple[str, ast.Call | None]] = []
    current: ast.expr = node
    for _ in range(MAX_CHAIN):
        call = current if isinstance(current, ast.Call) else None
        func = current.func if isinstance(current, ast.Call) else current
        if isinstance(func, ast.Attribute):
            steps.append((func.attr, call))
            current = func.value
        else:
            if call is not None:
                current = func
                continue
            break
    steps.reverse()
    return current, steps


def _source_of(
    node: ast.expr, frames: dict[str, list[ast.expr]], text_of: Callable[[ast.expr], tuple[str | None, dict[str, str]]]
) -> tuple[bool, str | None] | None:
    """Whether a DataFrame expression read from a table is limited, and its SQL text; None when it
    does not come from ``spark.sql`` or a table."""
    limited = False
    current = node
    for _ in range(MAX_CHAIN):
        root, steps = _chain(current)
        names = [s for s, _ in steps]
        limited = limited or any(n in LIMITING for n in names)
        if isinstance(root, ast.Name) and root.id == "spark" and names:
            sql = None
            if names[0] == "sql" and steps[0][1] is not None and steps[0][1].args:
                sql = text_of(steps[0][1].args[0])[0]
            if names[0] in ("sql", "table") or (names[0] == "read" and "table" in names):
                return limited, sql
            return None
        if isinstance(root, ast.Name) and root.id in frames:
            values = frames[root.id]
            # df = df.filter(...): the df inside is the value df had before this one
            at = next((i for i, v in enumerate(values) if v is current), len(values))
            if at == 0:
                return None
            current = values[at - 1]
            continue
        return None
    return None


def _keyword(node: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in node.keywords if k.arg == name), None)
