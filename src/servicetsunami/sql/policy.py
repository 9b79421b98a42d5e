"""What a read-only statement may contain, checked on the parsed Databricks AST.

The rules, each with the refusal a person sees:

* no statement that writes, changes the session or reaches outside the catalog, at the top or
  nested (``SELECT ... INTO``, DML inside a CTE) -> :data:`READ_ONLY_MESSAGE`;
* no table-valued function as a row source except ``range(...)``; ``explode`` / ``posexplode`` /
  ``inline`` only in ``LATERAL VIEW`` -> :data:`TABLE_FUNCTION_MESSAGE`;
* no function on the deny-list (file readers, environment and engine state, secrets, Java
  reflection, HTTP), wherever it appears -> names the function and says why;
* no function qualified with a schema or catalog (a UDF living elsewhere).

These checks are the second line of defence; the engines are locked down on their own (see
DESIGN.md section 4). A deny-list can never be complete, which is why row sources use an allow-list.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from sqlglot import exp
from sqlglot.tokenizer_core import Token, TokenType

from servicetsunami.errors import QueryRefused
from servicetsunami.sql.qualify import FILE_PATH_MESSAGE, is_named_table

READ_ONLY_MESSAGE = (
    "only read-only statements are allowed (SELECT, WITH, VALUES, EXPLAIN, DESCRIBE, SHOW); "
    "use the ingestion tools to write"
)
TABLE_FUNCTION_MESSAGE = "table functions are not allowed; query a table in your catalog"

#: Table-valued functions that may be used as a row source.
ALLOWED_TABLE_FUNCTIONS = frozenset({"range"})

#: Functions refused wherever they appear: they read files, the environment, engine or catalog
#: state, secrets, or call out of the engine. Matched case-insensitively on the name as written.
DENIED_FUNCTIONS = frozenset(
    {
        # DuckDB: files, other databases, settings and environment
        "getenv", "current_setting", "getvariable", "which_secret",
        "glob", "query", "query_table", "sniff_csv",
        "delta_scan", "parquet_scan", "iceberg_scan", "postgres_scan", "sqlite_scan", "mysql_scan",
        "postgres_query", "mysql_query", "load_aws_credentials",
        "read_text", "read_blob", "read_csv", "read_csv_auto", "read_parquet", "read_json",
        "read_json_auto", "read_json_objects", "read_ndjson", "read_ndjson_auto", "read_xlsx",
        "json_execute_serialized_sql", "json_deserialize_sql",
        # Databricks: file and stream readers, secrets, reflection, HTTP
        "read_files", "read_kafka", "read_kinesis", "read_pubsub", "read_pulsar",
        "read_statestore", "read_state_metadata", "cloud_files_state",
        "secret", "try_secret", "list_secrets",
        "reflect", "java_method", "try_reflect",
        "http_request",
    }
)  # fmt: skip

#: Name prefixes refused for the same reasons; no Databricks function starts with any of them.
DENIED_PREFIXES = (
    "read_", "duckdb_", "pragma_", "sqlite_", "pg_", "postgres_", "mysql_",
    "iceberg_", "delta_", "parquet_", "http_",
)  # fmt: skip

_FORBIDDEN_NODE_NAMES = (
    "DML", "DDL", "Insert", "Update", "Delete", "Merge", "Copy", "Create", "Drop", "Alter",
    "TruncateTable", "Command", "Into", "Set", "Pragma", "Use", "Cache", "Uncache", "Refresh",
    "Grant", "Revoke", "Transaction", "Commit", "Rollback", "LoadData", "Attach", "Detach",
    "Install", "Export", "Analyze", "Comment", "Declare", "Execute", "Kill", "Put", "Get",
    "Describe", "Show", "Summarize",
)  # fmt: skip

#: Statement nodes that must not appear anywhere in a read-only query. Looked up by name so a
#: class missing from some sqlglot release does not break the import.
FORBIDDEN_NODES: tuple[type[exp.Expr], ...] = tuple(
    getattr(exp, name) for name in _FORBIDDEN_NODE_NAMES if isinstance(getattr(exp, name, None), type)
)

#: Generators Spark allows in ``LATERAL VIEW``: explode, posexplode, inline and their OUTER forms.
_LATERAL_VIEW_GENERATORS = (exp.Explode, exp.Inline)


def check_query(root: exp.Expr, /) -> None:
    """Refuse ``root`` unless it is a read-only query that stays inside the catalog's tables."""
    if not isinstance(root, (exp.Query, exp.Values)):
        raise QueryRefused(READ_ONLY_MESSAGE)
    for node in root.walk():
        if isinstance(node, FORBIDDEN_NODES):
            raise QueryRefused(READ_ONLY_MESSAGE)
        if isinstance(node, exp.Func):
            _check_function(node)
        if isinstance(node, exp.Table):
            _check_row_source(node)
        elif isinstance(node, exp.Unnest) and isinstance(node.parent, (exp.From, exp.Join)):
            raise QueryRefused(TABLE_FUNCTION_MESSAGE)
        elif isinstance(node, exp.Lateral):
            _check_lateral(node)
        elif isinstance(node, exp.Stream):
            raise QueryRefused("streaming reads (STREAM) are not available here; query the table itself")


def function_name(node: exp.Func, /) -> str:
    """The function's name as a user would write it, lower-case."""
    if isinstance(node, exp.Anonymous):
        return node.name.lower()
    return node.sql_name().lower()


def is_denied_function(name: str, /) -> bool:
    name = name.lower()
    return name in DENIED_FUNCTIONS or name.startswith(DENIED_PREFIXES)


def _check_function(node: exp.Func) -> None:
    name = function_name(node)
    if name == "identifier":
        # Databricks resolves IDENTIFIER('...') at run time, after the guard has looked at names.
        raise QueryRefused("IDENTIFIER(...) is not supported; write the table or column name directly")
    if is_denied_function(name) or isinstance(node, (exp.ReadCSV, exp.ReadParquet, exp.Secret)):
        if isinstance(node.parent, exp.Table):
            raise QueryRefused(TABLE_FUNCTION_MESSAGE)
        raise QueryRefused(
            f"function {name}() is not allowed: it reaches outside your catalog's tables "
            "(files, settings, secrets or the network)"
        )
    if isinstance(node.parent, exp.Dot) and node.parent.expression is node:
        raise QueryRefused(
            f"function {name}() must not be qualified with a schema or catalog; only built-in functions are available"
        )


def _check_row_source(table: exp.Table) -> None:
    if is_named_table(table):
        return
    source = table.this
    if isinstance(source, exp.Literal):
        raise QueryRefused(FILE_PATH_MESSAGE)
    if isinstance(source, exp.Func) and function_name(source) in ALLOWED_TABLE_FUNCTIONS:
        return
    if isinstance(source, _LATERAL_VIEW_GENERATORS):
        raise QueryRefused(
            f"table functions are not allowed; use LATERAL VIEW {function_name(source)}(...) to turn an array into rows"
        )
    raise QueryRefused(TABLE_FUNCTION_MESSAGE)


def _check_lateral(lateral: exp.Lateral) -> None:
    source = lateral.this
    if lateral.args.get("view"):
        if isinstance(source, _LATERAL_VIEW_GENERATORS):
            return
        raise QueryRefused(
            "LATERAL VIEW supports explode, posexplode and inline (and their OUTER forms); "
            "table functions are not allowed"
        )
    if not isinstance(source, exp.Subquery):
        raise QueryRefused(TABLE_FUNCTION_MESSAGE)


def refuse_denied_calls(tokens: Sequence[Token], /) -> None:
    """Refuse a call to a denied function found in raw tokens.

    Used when a statement does not parse, so that ``SELECT * FROM glob('x')`` is refused for what
    it tries to do rather than reported as a syntax error.
    """
    for token, following in itertools.pairwise(tokens):
        if following.token_type == TokenType.L_PAREN and is_denied_function(token.text):
            raise QueryRefused(
                f"function {token.text.lower()}() is not allowed: it reaches outside your "
                "catalog's tables (files, settings, secrets or the network)"
            )
