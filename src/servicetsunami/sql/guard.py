"""The query guard: one read-only Databricks SQL statement, every table inside the caller's catalog.

:func:`guard_query` is the only way SQL from a user or an agent reaches an engine. It

1. splits the text into statements with sqlglot's tokenizer (so a ``;`` inside a string or a
   comment is not a separator) and refuses anything but exactly one;
2. routes on the first keyword: ``SELECT`` / ``WITH`` / ``VALUES`` / ``FROM`` / ``(`` are queries,
   ``EXPLAIN <query>``, ``DESCRIBE [TABLE] [EXTENDED] t`` and ``SHOW TABLES | SCHEMAS | COLUMNS``
   are the metadata forms; everything else is refused before it is even parsed;
3. parses queries as Databricks SQL and applies :mod:`servicetsunami.sql.policy`;
4. qualifies every table to ``catalog.schema.table`` (:mod:`servicetsunami.sql.qualify`).

Refusals are :class:`~servicetsunami.errors.QueryRefused` (or ``PermissionDenied`` for another
tenant's catalog, ``InvalidIdentifier`` for a malformed name) with a message a person can act on;
text that does not parse is a :class:`~servicetsunami.errors.SqlSyntaxError` saying where.

sqlglot's tokenizer swallows the rest of a ``SHOW`` or ``EXPLAIN`` statement as one string (up to
the first ``;``, even inside quotes), so the text after those keywords is tokenized again on its own.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokenizer_core import Token, TokenType

from servicetsunami.errors import QueryRefused, SqlSyntaxError
from servicetsunami.sql.policy import READ_ONLY_MESSAGE, check_query, refuse_denied_calls
from servicetsunami.sql.qualify import (
    NamePart,
    TableReference,
    check_catalog,
    identifier,
    qualify_name,
    qualify_schema,
    qualify_tables,
    table_name_parts,
)
from servicetsunami.tenancy import TableRef, check_identifier

__all__ = ["GuardedQuery", "QueryKind", "TableReference", "guard_query"]

DIALECT = "databricks"

QueryKind = Literal["select", "explain", "describe", "show_tables", "show_schemas", "show_columns"]

_QUERY_STARTS = frozenset({"SELECT", "WITH", "VALUES", "FROM", "("})
# Statements the tokenizer reads as plain words; starting with any other plain word is a typo.
_OTHER_STATEMENTS = frozenset(
    {
        "ANALYZE", "ATTACH", "CACHE", "CALL", "CHECKPOINT", "CLEAR", "DEALLOCATE", "DETACH", "EXECUTE",
        "EXPORT", "FSCK", "IMPORT", "INSTALL", "LIST", "LOAD", "MSCK", "PRAGMA", "PREPARE", "REFRESH",
        "REPAIR", "RESET", "RESTORE", "REVOKE", "SUMMARIZE", "UNCACHE", "UNDROP",
    }
)  # fmt: skip
_STATEMENT_WORDS = ("SELECT", "WITH", "VALUES", "EXPLAIN", "DESCRIBE", "SHOW")
_EXPLAIN_MODES = frozenset({"EXTENDED", "FORMATTED", "COST", "CODEGEN"})
_SHOW_USAGE = "supported forms are SHOW TABLES [IN schema], SHOW SCHEMAS and SHOW COLUMNS IN table"
_EXPLAIN_USAGE = "EXPLAIN works on a query: EXPLAIN SELECT ..."
_DESCRIBE_USAGE = "supported form is DESCRIBE [TABLE] [EXTENDED] table"


@dataclass(frozen=True, kw_only=True)
class GuardedQuery:
    """A statement the guard accepted, with every table name qualified.

    ``statement`` is the Databricks AST: for ``select`` the query, for ``explain`` the query being
    explained, for ``describe`` the ``DESCRIBE`` node, for the ``show_*`` kinds a ``Command``.
    Treat it as read-only; copy it before transforming it.
    """

    kind: QueryKind
    statement: exp.Expr
    tables: tuple[TableReference, ...]  # real tables, CTE names excluded, deduplicated, in text order
    target: TableRef | None = None  # for describe / show_columns
    schema: str | None = None  # for show_tables (IN/FROM schema); None means every schema
    sql: str  # the statement re-rendered as Databricks SQL (qualified), for display


def guard_query(sql: str, /, *, catalog: str, default_schema: str = "bronze") -> GuardedQuery:
    """Check one statement of Databricks SQL and qualify it inside ``catalog``.

    Raises ``QueryRefused``, ``PermissionDenied``, ``InvalidIdentifier`` or ``SqlSyntaxError``.
    """
    check_identifier(catalog, what="catalog")
    check_identifier(default_schema, what="schema")
    if not isinstance(sql, str):
        raise QueryRefused("the query must be a string of SQL")
    if len(sql) > _CACHED_SQL_CHARS:
        return _checked(sql, catalog, default_schema)
    return _cached(sql, catalog, default_schema)


# The guard is a pure function of (text, catalog, default schema): clients repeat the same
# statements, and parsing and qualifying cost more than running a small query. The catalog is part
# of the key, so one tenant's entry never answers another's; refusals are not cached (they raise).
# Callers treat ``GuardedQuery.statement`` as read-only and copy it before transforming it.
_CACHED_SQL_CHARS = 8192


def _checked(sql: str, catalog: str, default_schema: str) -> GuardedQuery:
    try:
        return _guard(sql, catalog=catalog, default_schema=default_schema)
    except RecursionError as exc:
        raise QueryRefused("the query is nested too deeply to check; simplify it") from exc


_cached = functools.lru_cache(maxsize=512)(_checked)


def _guard(sql: str, /, *, catalog: str, default_schema: str) -> GuardedQuery:
    tokens = _tokenize(sql)
    first = next((t for t in tokens if t.token_type != TokenType.SEMICOLON), None)
    word = first.text.upper() if first is not None else ""
    if first is not None and word == "EXPLAIN":
        inner, inner_tokens = _after(sql, first)
        if inner_tokens and inner_tokens[0].text.upper() in _EXPLAIN_MODES:
            inner, inner_tokens = _after(inner, inner_tokens[0])
        text, statement_tokens = _single_statement(inner, inner_tokens, empty=_EXPLAIN_USAGE)
        if statement_tokens[0].text.upper() not in _QUERY_STARTS:
            raise QueryRefused(_EXPLAIN_USAGE)
        query = _guard_select(text, statement_tokens, catalog=catalog, default_schema=default_schema)
        return GuardedQuery(
            kind="explain",
            statement=query.statement,
            tables=query.tables,
            sql=f"EXPLAIN {query.sql}",
        )
    if first is not None and word == "SHOW":
        rest, rest_tokens = _after(sql, first)
        _, show_tokens = _single_statement(rest, rest_tokens, empty=_SHOW_USAGE)
        return _guard_show(show_tokens, catalog=catalog, default_schema=default_schema)

    text, statement_tokens = _single_statement(sql, tokens)
    word = statement_tokens[0].text.upper()
    if word in ("DESCRIBE", "DESC"):
        return _guard_describe(text, catalog=catalog, default_schema=default_schema)
    if word not in _QUERY_STARTS:
        first = statement_tokens[0]
        if first.token_type == TokenType.VAR and word not in _OTHER_STATEMENTS:
            raise _not_a_statement(sql, first)
        raise QueryRefused(READ_ONLY_MESSAGE)
    return _guard_select(text, statement_tokens, catalog=catalog, default_schema=default_schema)


def _not_a_statement(sql: str, token: Token) -> SqlSyntaxError:
    """A first word that is no SQL statement at all (a typo such as ``slect``): a syntax error with
    its position and the statement it was probably meant to be."""
    line = sql.count("\n", 0, token.start) + 1
    column = token.start - (sql.rfind("\n", 0, token.start) + 1) + 1
    guess = difflib.get_close_matches(token.text.upper(), _STATEMENT_WORDS, n=1, cutoff=0.6)
    hint = f" (did you mean {guess[0]}?)" if guess else ""
    return SqlSyntaxError(
        f"the SQL does not parse as Databricks SQL: {token.text!r} at line {line}, column {column} does not start "
        f"a statement{hint}; a query starts with SELECT, WITH, VALUES, EXPLAIN, DESCRIBE or SHOW",
        line=line,
        column=column,
    )


def _tokenize(sql: str) -> list[Token]:
    try:
        return Dialect.get_or_raise(DIALECT).tokenize(sql)
    except TokenError as exc:
        raise SqlSyntaxError(f"the SQL could not be read: {_first_line(str(exc))}") from exc


def _after(sql: str, token: Token) -> tuple[str, list[Token]]:
    """The text after ``token`` and its tokens."""
    rest = sql[token.start + len(token.text) :]
    return rest, _tokenize(rest)


def _single_statement(
    sql: str, tokens: Sequence[Token], *, empty: str = "the query is empty; send one SQL statement"
) -> tuple[str, list[Token]]:
    """Return the text and tokens of the only statement in ``sql`` (trailing ``;`` allowed)."""
    statements: list[tuple[list[Token], int]] = []  # tokens, offset where the statement ends
    current: list[Token] = []
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            if current:
                statements.append((current, token.start))
            current = []
        else:
            current.append(token)
    if current:
        statements.append((current, len(sql)))
    if not statements:
        raise QueryRefused(empty)
    if len(statements) > 1:
        raise QueryRefused("multiple statements are not allowed; send one statement per call")
    statement_tokens, end = statements[0]
    return sql[statement_tokens[0].start : end], statement_tokens


def _parse(text: str, tokens: Sequence[Token]) -> exp.Expr:
    try:
        parsed = sqlglot.parse_one(text, read=DIALECT)
    except ParseError as exc:
        refuse_denied_calls(tokens)
        raise SqlSyntaxError(_describe_parse_error(exc)) from exc
    except TokenError as exc:
        raise SqlSyntaxError(f"the SQL could not be read: {_first_line(str(exc))}") from exc
    # Comments are dropped: they carry nothing the engines need and are not worth re-rendering.
    for node in parsed.walk():
        node.comments = None
    return parsed


def _describe_parse_error(exc: ParseError) -> str:
    if exc.errors:
        error = exc.errors[0]
        near = str(error.get("highlight") or "").strip()
        where = f"line {error.get('line')}, column {error.get('col')}"
        description = _plain(str(error.get("description") or "invalid syntax"))
        return f"the SQL does not parse as Databricks SQL: {description} at {where}" + (
            f" near {near!r}" if near else ""
        )
    return f"the SQL does not parse as Databricks SQL: {_first_line(str(exc))}"


def _plain(description: str) -> str:
    """sqlglot's descriptions can embed token and class reprs; say the same in words."""
    description = re.sub(
        r"but got <Token token_type: TokenType\.SENTINEL[^>]*>", "but the statement ended", description
    )
    description = re.sub(r"<Token token_type: TokenType\.\w+, text: ([^,]*),[^>]*>", r"'\1'", description)
    description = re.sub(
        r"Required keyword: '(\w+)' missing for <class '[\w.]+\.(\w+)'>",
        lambda m: f"the {m.group(2).upper()} is incomplete",
        description,
    )
    return description


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else "invalid syntax"


def _render(statement: exp.Expr) -> str:
    return statement.sql(dialect=DIALECT)


def _guard_select(text: str, tokens: Sequence[Token], /, *, catalog: str, default_schema: str) -> GuardedQuery:
    statement = _parse(text, tokens)
    check_query(statement)
    tables = qualify_tables(statement, catalog=catalog, default_schema=default_schema)
    return GuardedQuery(kind="select", statement=statement, tables=tables, sql=_render(statement))


def _guard_describe(text: str, /, *, catalog: str, default_schema: str) -> GuardedQuery:
    statement = _parse(text, [])
    if not isinstance(statement, exp.Describe):
        raise QueryRefused(READ_ONLY_MESSAGE)
    table = statement.this
    kind = str(statement.args.get("kind") or "").upper()
    style = str(statement.args.get("style") or "").upper()
    extras = {key for key, value in statement.args.items() if value and key not in ("this", "kind", "style")}
    if (
        not isinstance(table, exp.Table)
        or kind not in ("", "TABLE")
        or style not in ("", "EXTENDED", "FORMATTED")
        or extras
        or table.args.get("version") is not None
    ):
        raise QueryRefused(f"this DESCRIBE is not supported; {_DESCRIBE_USAGE}")
    target = qualify_name(table_name_parts(table), catalog=catalog, default_schema=default_schema)
    qualified_table = exp.Table(
        this=identifier(target.name), db=identifier(target.schema), catalog=identifier(target.catalog)
    )
    qualified = exp.Describe(this=qualified_table, kind=kind or None)
    if style:
        qualified.set("style", style)
    return GuardedQuery(
        kind="describe",
        statement=qualified,
        tables=(TableReference(target),),
        target=target,
        sql=_render(qualified),
    )


def _guard_show(tokens: Sequence[Token], /, *, catalog: str, default_schema: str) -> GuardedQuery:
    words = [t.text.upper() for t in tokens]
    what = words[0]
    if what == "TABLES":
        schema = None
        if len(tokens) > 1:
            if words[1] not in ("IN", "FROM") or len(tokens) < 3:
                raise QueryRefused(f"this SHOW is not supported; {_SHOW_USAGE}")
            schema = qualify_schema(_name_parts(tokens[2:]), catalog=catalog)
        text = f"TABLES IN {catalog}.{schema}" if schema else "TABLES"
        return GuardedQuery(kind="show_tables", statement=_show(text), tables=(), schema=schema, sql=f"SHOW {text}")
    if what in ("SCHEMAS", "DATABASES"):
        if len(tokens) > 1:
            if words[1] not in ("IN", "FROM") or len(tokens) < 3:
                raise QueryRefused(f"this SHOW is not supported; {_SHOW_USAGE}")
            parts = _name_parts(tokens[2:])
            if len(parts) != 1:
                raise QueryRefused(f"this SHOW is not supported; {_SHOW_USAGE}")
            check_catalog(parts[0].text, catalog=catalog)
        text = f"SCHEMAS IN {catalog}"
        return GuardedQuery(kind="show_schemas", statement=_show(text), tables=(), sql=f"SHOW {text}")
    if what == "COLUMNS" and len(tokens) >= 3 and words[1] in ("IN", "FROM"):
        name_tokens = list(tokens[2:])
        schema_parts: list[NamePart] = []
        for index, word in enumerate(words[3:], start=3):
            if word in ("IN", "FROM"):
                name_tokens = list(tokens[2:index])
                schema_parts = _name_parts(tokens[index + 1 :])
                break
        parts = _name_parts(name_tokens)
        if schema_parts:
            if len(parts) != 1:
                raise QueryRefused(f"this SHOW is not supported; {_SHOW_USAGE}")
            parts = [*schema_parts, *parts]
        target = qualify_name(parts, catalog=catalog, default_schema=default_schema)
        text = f"COLUMNS IN {target}"
        return GuardedQuery(
            kind="show_columns",
            statement=_show(text),
            tables=(TableReference(target),),
            target=target,
            sql=f"SHOW {text}",
        )
    raise QueryRefused(f"this SHOW is not supported; {_SHOW_USAGE}")


def _show(text: str) -> exp.Command:
    return exp.Command(this="SHOW", expression=exp.Literal.string(text))


def _name_parts(tokens: Sequence[Token]) -> list[NamePart]:
    """Read ``a.b.c`` (parts plain or backtick-quoted) from tokens; refuse anything else."""
    parts: list[NamePart] = []
    for index, token in enumerate(tokens):
        if index % 2 == 1:
            if token.token_type != TokenType.DOT:
                raise QueryRefused(f"this SHOW is not supported; {_SHOW_USAGE}")
            continue
        if token.token_type == TokenType.IDENTIFIER:
            parts.append(NamePart(token.text, quoted=True))
        elif token.text.replace("_", "a").isalnum():
            parts.append(NamePart(token.text))
        else:
            raise QueryRefused(f"this SHOW is not supported; {_SHOW_USAGE}")
    if not parts or len(tokens) % 2 == 0:
        raise QueryRefused(f"this SHOW is not supported; {_SHOW_USAGE}")
    return parts
