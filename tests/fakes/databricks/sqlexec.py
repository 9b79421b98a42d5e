"""The fake warehouse's SQL: every statement is parsed as Databricks SQL with sqlglot and interpreted
over the local engine (Delta tables, DuckDB).

Queries (``SELECT`` / ``WITH`` / ``EXPLAIN``) go through the project's own guard and transpiler and run
on DuckDB. The write and metadata forms the Databricks engine sends are interpreted here: ``COPY INTO``,
``CREATE [OR REPLACE] TABLE ... AS SELECT`` (from ``read_files`` or from a query), ``MERGE [WITH SCHEMA
EVOLUTION] INTO``, ``DROP TABLE``, ``DESCRIBE TABLE EXTENDED``, ``DESCRIBE HISTORY``, ``DESCRIBE DETAIL``,
``OPTIMIZE`` and ``VACUUM``. The last four (and ``WITH SCHEMA EVOLUTION``) are real Databricks SQL that
sqlglot does not parse; they are matched by a strict pattern whose table name sqlglot parses.

A statement that is not valid Databricks SQL, or a form the fake does not know, is recorded in
``FakeDatabricks.invalid_sql`` so the test that sent it fails.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from servicetsunami.errors import Conflict, InvalidInput, NotFound, QueryTimeout, SqlSyntaxError, TsunamiError
from servicetsunami.sql import guard_query, to_duckdb
from servicetsunami.tenancy import TableRef
from tests.fakes.databricks.state import Statement, WorkspaceState

_HISTORY = re.compile(r"^\s*DESCRIBE\s+HISTORY\s+(?P<t>[`\w.]+)(?:\s+LIMIT\s+(?P<n>\d+))?\s*;?\s*$", re.I)
_DETAIL = re.compile(r"^\s*DESCRIBE\s+DETAIL\s+(?P<t>[`\w.]+)\s*;?\s*$", re.I)
_OPTIMIZE = re.compile(r"^\s*OPTIMIZE\s+(?P<t>[`\w.]+)\s*;?\s*$", re.I)
_VACUUM = re.compile(r"^\s*VACUUM\s+(?P<t>[`\w.]+)(?:\s+RETAIN\s+(?P<h>\d+)\s+HOURS)?\s*;?\s*$", re.I)
_EVOLUTION = re.compile(r"^\s*MERGE\s+WITH\s+SCHEMA\s+EVOLUTION\s+INTO\s", re.I)


class StatementError(Exception):
    """Ends a statement FAILED with a Databricks error class in the message."""

    def __init__(self, error_class: str, message: str, *, code: str = "BAD_REQUEST", sql_state: str = "") -> None:
        super().__init__(f"[{error_class}] {message}")
        self.code = code
        self.sql_state = sql_state


class Unsupported(Exception):
    """Not Databricks SQL, or a form the fake does not interpret: the test that sent it fails."""


def execute(state: WorkspaceState, stmt: Statement, *, timeout: float) -> tuple[pa.Table, bool]:
    try:
        return _dispatch(state, stmt, timeout)
    except (StatementError, Unsupported):
        raise
    except NotFound as exc:
        raise StatementError("TABLE_OR_VIEW_NOT_FOUND", exc.message, sql_state="42P01") from exc
    except Conflict as exc:
        raise StatementError("TABLE_OR_VIEW_ALREADY_EXISTS", exc.message, sql_state="42P07") from exc
    except QueryTimeout as exc:
        raise StatementError("QUERY_EXECUTION_TIMEOUT_EXCEEDED", exc.message, code="DEADLINE_EXCEEDED") from exc
    except SqlSyntaxError as exc:
        raise StatementError("PARSE_SYNTAX_ERROR", exc.message, sql_state="42601") from exc
    except InvalidInput as exc:
        raise StatementError("DELTA_FAILED_TO_MERGE_FIELDS", exc.message, sql_state="22005") from exc
    except TsunamiError as exc:
        raise StatementError("INTERNAL_ERROR", exc.message, code="INTERNAL_ERROR") from exc


def _dispatch(state: WorkspaceState, stmt: Statement, timeout: float) -> tuple[pa.Table, bool]:
    sql = stmt.sql
    for pattern, handler in (
        (_HISTORY, _describe_history),
        (_DETAIL, _describe_detail),
        (_OPTIMIZE, _optimize),
        (_VACUUM, _vacuum),
    ):
        match = pattern.match(sql)
        if match:
            return handler(state, match), False
    evolution = bool(_EVOLUTION.match(sql))
    text = _EVOLUTION.sub("MERGE INTO ", sql, count=1) if evolution else sql
    try:
        parsed = [p for p in sqlglot.parse(text, read="databricks") if p is not None]
    except ParseError as exc:
        raise Unsupported(f"not Databricks SQL: {sql!r}: {str(exc).splitlines()[0]}") from exc
    if len(parsed) != 1:
        raise Unsupported(f"{len(parsed)} statements in one request (a warehouse takes one): {sql!r}")
    tree = parsed[0]
    if isinstance(tree, exp.Query) or (isinstance(tree, exp.Command) and tree.name.upper() == "EXPLAIN"):
        return _query(state, stmt, timeout)
    if isinstance(tree, exp.Describe):
        return _describe_extended(state, tree), False
    if isinstance(tree, exp.Copy):
        return _copy_into(state, tree), False
    if isinstance(tree, exp.Create) and str(tree.args.get("kind")).upper() == "TABLE" and tree.expression:
        return _create_as_select(state, tree, stmt, timeout), False
    if isinstance(tree, exp.Merge):
        return _merge(state, tree, evolution=evolution), False
    if isinstance(tree, exp.Drop) and str(tree.args.get("kind")).upper() == "TABLE":
        return _drop(state, tree), False
    raise Unsupported(f"the fake does not interpret this statement: {sql!r}")


# -- helpers ----------------------------------------------------------------------------------


def _ref(table: exp.Table) -> TableRef:
    if not (table.args.get("catalog") and table.args.get("db")):
        raise Unsupported(f"table {table.sql(dialect='databricks')} is not qualified as catalog.schema.table")
    return TableRef(table.catalog, table.db, table.name)


def _named(text: str) -> TableRef:
    return _ref(exp.to_table(text, dialect="databricks"))


def _check_schema(state: WorkspaceState, ref: TableRef) -> None:
    if f"{ref.catalog}.{ref.schema}" not in state.schemas:
        raise StatementError("SCHEMA_NOT_FOUND", f"The schema `{ref.catalog}`.`{ref.schema}` cannot be found.")


def _rows(columns: list[tuple[str, pa.DataType]], rows: list[list[object]]) -> pa.Table:
    schema = pa.schema([pa.field(n, t) for n, t in columns])
    return pa.Table.from_pylist([dict(zip(schema.names, r, strict=True)) for r in rows], schema=schema)


def _volume_files(state: WorkspaceState, path: str) -> Path:
    parts = path.rstrip("/").split("/")
    if len(parts) < 5 or parts[1] != "Volumes":
        raise StatementError("INVALID_PARAMETER_VALUE", f"{path} is not a path in a volume")
    catalog, schema, volume = parts[2:5]
    if f"{catalog}.{schema}.{volume}" not in state.volumes:
        raise StatementError("VOLUME_NOT_FOUND", f"Volume `{catalog}`.`{schema}`.`{volume}` does not exist.")
    return state.volume_dir(catalog, schema, volume).joinpath(*parts[5:])


def _parquet_reader(files: list[Path], *, merge_schema: bool) -> pa.RecordBatchReader:
    """The rows of Parquet files as Spark reads them: names and types only. Arrow field metadata
    (where pyarrow keeps column comments) means nothing to Spark, so no comment survives the load."""
    schemas = [pq.read_schema(f) for f in files]
    schema = pa.unify_schemas(schemas, promote_options="permissive") if merge_schema else schemas[0]
    schema = pa.schema([f.remove_metadata() for f in schema])
    return ds.dataset([str(f) for f in files], schema=schema, format="parquet").scanner().to_reader()


# -- queries ----------------------------------------------------------------------------------


def _query(state: WorkspaceState, stmt: Statement, timeout: float) -> tuple[pa.Table, bool]:
    tables = [
        t
        for t in sqlglot.parse_one(
            stmt.sql.split(None, 1)[-1] if stmt.sql.lstrip().upper().startswith("EXPLAIN") else stmt.sql,
            read="databricks",
        ).find_all(exp.Table)
        if t.name
    ]
    catalogs = {t.catalog for t in tables if t.catalog}
    if len(tables) and len(catalogs) != 1:
        raise Unsupported(f"query tables are not qualified in one catalog: {stmt.sql!r}")
    catalog = catalogs.pop() if catalogs else "fake_none"
    guarded = guard_query(stmt.sql, catalog=catalog)
    for ref in guarded.tables:
        _check_schema(state, ref.table)
    engine = state.engine
    cursor = engine._database(catalog if tables else None).cursor()
    stmt.interrupt = cursor.interrupt
    try:
        duck = to_duckdb(guarded, resolve=lambda ref: engine._source_for(ref, cursor))
        return engine._run_capped(cursor, duck, stmt.row_limit or 10**12, stmt.byte_limit or 10**15, timeout)
    finally:
        cursor.close()


def _select(state: WorkspaceState, query: exp.Expr, timeout: float) -> pa.Table:
    sql = query.sql(dialect="databricks")
    stmt = Statement(id="inner", sql=sql, disposition="INLINE", format="ARROW_STREAM", row_limit=None, byte_limit=None)
    return _query(state, stmt, timeout)[0]


# -- writes -----------------------------------------------------------------------------------


def _read_files_call(select: exp.Expr) -> tuple[str, dict[str, str]] | None:
    """``SELECT * FROM read_files('<path>', format => 'parquet', ...)``: the path and options."""
    if (
        not isinstance(select, exp.Select)
        or len(select.expressions) != 1
        or not isinstance(select.expressions[0], exp.Star)
    ):
        return None
    source = select.args.get("from_") or select.args.get("from")
    node = source.this if source is not None else None
    if isinstance(node, exp.Table) and isinstance(node.this, exp.Anonymous | exp.Func):
        node = node.this
    if not isinstance(node, exp.Func) or (node.name or "").lower() != "read_files":
        return None
    args = list(node.expressions) if isinstance(node, exp.Anonymous) else list(node.args.get("expressions") or [])
    if not args:
        args = [a for a in node.args.values() if isinstance(a, exp.Expr)]
    path = args[0].name
    options = {}
    for arg in args[1:]:
        if isinstance(arg, exp.Kwarg | exp.PropertyEQ | exp.EQ):
            options[arg.this.name.lower()] = arg.expression.name.lower()
    return path, options


def _create_as_select(state: WorkspaceState, tree: exp.Create, stmt: Statement, timeout: float) -> pa.Table:
    table = tree.this if isinstance(tree.this, exp.Table) else tree.this.this
    ref = _ref(table)
    _check_schema(state, ref)
    replace = bool(tree.args.get("replace"))
    if_not_exists = bool(tree.args.get("exists"))
    exists = state.engine.table_exists(ref)
    if exists and if_not_exists:
        return _rows([("num_affected_rows", pa.int64()), ("num_inserted_rows", pa.int64())], [])
    if exists and not replace:
        raise StatementError("TABLE_OR_VIEW_ALREADY_EXISTS", f"Cannot create table `{ref}` because it already exists.")
    comment = None
    for prop in (tree.args.get("properties") or exp.Properties(expressions=[])).expressions:
        if isinstance(prop, exp.SchemaCommentProperty):
            comment = prop.this.name
    call = _read_files_call(tree.expression)
    if call is not None:
        path, options = call
        if options.get("format") != "parquet":
            raise Unsupported(f"the fake reads only parquet with read_files, not {options}")
        folder = _volume_files(state, path)
        files = sorted(folder.glob("*.parquet")) if folder.is_dir() else ([folder] if folder.is_file() else [])
        if not files:
            raise StatementError("UNABLE_TO_INFER_SCHEMA", f"Unable to infer schema for Parquet at {path}.")
        data = _parquet_reader(files, merge_schema=options.get("mergeschema") == "true")
    else:
        data = _select(state, tree.expression, timeout).to_reader()
    result = state.engine.write_table(ref, data, mode="overwrite" if exists else "create", description=comment)
    with state.lock:
        state.loaded_files.pop(str(ref), None)  # a replaced table starts a new load history
    return _rows([("num_affected_rows", pa.int64()), ("num_inserted_rows", pa.int64())], [[result.rows, result.rows]])


def _copy_into(state: WorkspaceState, tree: exp.Copy) -> pa.Table:
    ref = _ref(tree.this)
    _check_schema(state, ref)
    if not state.engine.table_exists(ref):
        raise StatementError("TABLE_OR_VIEW_NOT_FOUND", f"The table or view `{ref}` cannot be found.")
    sources = tree.args.get("files") or []
    if len(sources) != 1:
        raise Unsupported("COPY INTO needs one FROM location")
    folder = _volume_files(state, sources[0].name)
    params = {p.this.name.upper(): p for p in tree.args.get("params") or []}
    fmt = params.get("FILEFORMAT")
    if fmt is None or fmt.expression.name.upper() != "PARQUET":
        raise Unsupported("the fake loads only FILEFORMAT = PARQUET")
    names = None
    if "FILES" in params:
        listed = params["FILES"].expression
        names = [e.name for e in (listed.expressions if isinstance(listed, exp.Tuple) else [listed.this])]

    def option(group: str, name: str) -> str | None:
        for prop in params[group].expressions if group in params else []:
            if isinstance(prop, exp.Property) and prop.this.name.lower() == name.lower():
                return str(prop.args["value"].name).lower()
        return None

    merge_schema = option("COPY_OPTIONS", "mergeSchema") == "true"
    files = [folder / n for n in names] if names is not None else sorted(folder.glob("*.parquet"))
    key = str(ref)
    # Like Delta's commit conflict check: two COPY INTO of the same file never both load it.
    with state.table_lock(key):
        with state.lock:
            done = state.loaded_files.setdefault(key, set())
            new = [f for f in files if str(f) not in done]
        missing = [f.name for f in new if not f.is_file()]
        if missing:
            raise StatementError("PATH_NOT_FOUND", f"Path does not exist: {', '.join(missing)}")
        if not new:
            return _rows([("num_affected_rows", pa.int64()), ("num_inserted_rows", pa.int64())], [[0, 0]])
        data = _parquet_reader(new, merge_schema=True)
        current = state.engine.describe(ref)
        added = [n for n in data.schema.names if n not in {c.name for c in current.columns}]
        if added and not merge_schema:
            raise StatementError("COPY_INTO_SCHEMA_MISMATCH", f"new columns {added} and mergeSchema is not set")
        result = state.engine.write_table(ref, data, mode="append")
        with state.lock:
            state.loaded_files.setdefault(key, set()).update(str(f) for f in new)
    return _rows([("num_affected_rows", pa.int64()), ("num_inserted_rows", pa.int64())], [[result.rows, result.rows]])


def _merge(state: WorkspaceState, tree: exp.Merge, *, evolution: bool) -> pa.Table:
    target = tree.this
    using = tree.args.get("using")
    if not isinstance(using, exp.Table):
        raise Unsupported("the fake merges from a table only")
    ref, source = _ref(target), _ref(using)
    t_alias, s_alias = target.alias_or_name, using.alias_or_name
    keys: list[str] = []
    condition = tree.args.get("on")
    for eq in condition.find_all(exp.EQ) if condition is not None else []:
        left, right = eq.this, eq.expression
        same = isinstance(left, exp.Column) and isinstance(right, exp.Column) and left.name == right.name
        if same and {left.table, right.table} == {t_alias, s_alias}:
            keys.append(left.name)
    whens = tree.args.get("whens")
    clauses = [w.sql(dialect="databricks").upper() for w in (whens.expressions if whens is not None else [])]
    if sorted(clauses) != sorted(["WHEN MATCHED THEN UPDATE SET *", "WHEN NOT MATCHED THEN INSERT *"]) or not keys:
        raise Unsupported(f"the fake interprets MERGE ... ON t.k = s.k UPDATE SET * / INSERT * only: {clauses}")
    rows = _select(
        state,
        exp.select("*").from_(
            exp.to_table(f"`{source.catalog}`.`{source.schema}`.`{source.name}`", dialect="databricks")
        ),
        300,
    )
    current = state.engine.describe(ref)
    added = [n for n in rows.schema.names if n not in {c.name for c in current.columns}]
    if added and not evolution:
        raise StatementError("DELTA_MERGE_UNRESOLVED_EXPRESSION", f"cannot resolve {added} in UPDATE SET *")
    result = state.engine.write_table(ref, rows.to_reader(), mode="merge", merge_keys=keys)
    return _rows([("num_affected_rows", pa.int64())], [[result.rows]])


def _drop(state: WorkspaceState, tree: exp.Drop) -> pa.Table:
    for table in tree.args.get("tables") or [tree.this]:
        ref = _ref(table)
        if not state.engine.table_exists(ref):
            if tree.args.get("exists"):
                continue
            raise StatementError("TABLE_OR_VIEW_NOT_FOUND", f"The table or view `{ref}` cannot be found.")
        state.engine.drop_table(ref)
        with state.lock:
            state.loaded_files.pop(str(ref), None)
    return _rows([], [])


# -- metadata ---------------------------------------------------------------------------------


def _describe_extended(state: WorkspaceState, tree: exp.Describe) -> pa.Table:
    if str(tree.args.get("style") or "").upper() != "EXTENDED":
        raise Unsupported("the fake answers DESCRIBE TABLE EXTENDED only")
    ref = _ref(tree.this)
    d = state.engine.describe(ref)
    rows: list[list[object]] = [[c.name, c.type.lower(), c.comment] for c in d.columns]
    if d.partition_columns:
        rows += [["# Partition Information", "", ""], ["# col_name", "data_type", "comment"]]
        rows += [[c.name, c.type.lower(), c.comment] for c in d.columns if c.name in d.partition_columns]
    rows += [["", "", ""], ["# Detailed Table Information", "", ""]]
    rows += [["Catalog", ref.catalog, ""], ["Database", ref.schema, ""], ["Table", ref.name, ""]]
    rows += [["Type", "MANAGED", ""], ["Location", f"s3://fake-metastore/{ref.catalog}/{ref.schema}/{ref.name}", ""]]
    rows += [["Provider", "delta", ""], ["Owner", "fake@example.com", ""]]
    if d.comment:
        rows.append(["Comment", d.comment, ""])
    props = ",".join(f"{k}={v}" for k, v in sorted(d.properties.items()))
    rows.append(["Table Properties", f"[{props}]", ""])
    return _rows([("col_name", pa.string()), ("data_type", pa.string()), ("comment", pa.string())], rows)


def _describe_history(state: WorkspaceState, match: re.Match[str]) -> pa.Table:
    ref = _named(match.group("t"))
    limit = int(match.group("n")) if match.group("n") else 1000
    history = state.engine.history(ref, limit=limit)
    rows = [
        [
            h.version,
            h.timestamp,
            "1",
            "fake@example.com",
            h.operation,
            {str(k): str(v) for k, v in h.parameters.items()},
            max(h.version - 1, 0) if h.version else None,
            "WriteSerializable",
            {str(k): str(v) for k, v in h.metrics.items()},
            None,
        ]
        for h in history
    ]
    string_map = pa.map_(pa.string(), pa.string())
    columns = [
        ("version", pa.int64()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("userId", pa.string()),
        ("userName", pa.string()),
        ("operation", pa.string()),
        ("operationParameters", string_map),
        ("readVersion", pa.int64()),
        ("isolationLevel", pa.string()),
        ("operationMetrics", string_map),
        ("userMetadata", pa.string()),
    ]
    return _rows(
        columns,
        [[r[0], r[1], r[2], r[3], r[4], list(r[5].items()), r[6], r[7], list(r[8].items()), r[9]] for r in rows],
    )


def _describe_detail(state: WorkspaceState, match: re.Match[str]) -> pa.Table:
    ref = _named(match.group("t"))
    d = state.engine.describe(ref)
    columns = [
        ("format", pa.string()),
        ("id", pa.string()),
        ("name", pa.string()),
        ("description", pa.string()),
        ("location", pa.string()),
        ("lastModified", pa.timestamp("us", tz="UTC")),
        ("partitionColumns", pa.list_(pa.string())),
        ("numFiles", pa.int64()),
        ("sizeInBytes", pa.int64()),
        ("properties", pa.map_(pa.string(), pa.string())),
        ("minReaderVersion", pa.int32()),
        ("minWriterVersion", pa.int32()),
    ]
    row = [
        "delta",
        f"fake-{ref}",
        str(ref),
        d.comment,
        f"s3://fake-metastore/{ref.catalog}/{ref.schema}/{ref.name}",
        d.updated_at,
        d.partition_columns,
        d.files,
        d.size_bytes,
        list(d.properties.items()),
        1,
        2,
    ]
    return _rows(columns, [row])


def _optimize(state: WorkspaceState, match: re.Match[str]) -> pa.Table:
    ref = _named(match.group("t"))
    metrics = state.engine.optimize(ref)
    text = json.dumps({k: v for k, v in metrics.items() if isinstance(v, int | float | str)})
    return _rows([("path", pa.string()), ("metrics", pa.string())], [[str(ref), text]])


def _vacuum(state: WorkspaceState, match: re.Match[str]) -> pa.Table:
    ref = _named(match.group("t"))
    # A real warehouse refuses RETAIN under 168 HOURS unless the retention check is off; see README.
    removed = state.engine.vacuum(ref, retention_hours=int(match.group("h") or 168))
    return _rows([("path", pa.string())], [[p] for p in removed])


Interrupt = Callable[[], None]
