"""Keyset pagination in SQL, the same on SQLite and PostgreSQL.

A page is the rows whose sort key comes after the key of the last row of the previous page, so
rows added or removed meanwhile neither repeat nor skip a row (offsets would). The sort key always
ends with a unique column, which makes it a total order.

Text keys compare code point by code point on both stores (SQLite's default BINARY collation; on
PostgreSQL ``COLLATE "C"``, whatever the database's locale), which is also how Python compares
strings, so cursors written by the in-memory pagination of earlier versions keep their meaning.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVarTuple

from sqlalchemy import ColumnElement, Select, String, tuple_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from servicetsunami.errors import InvalidInput

_Ts = TypeVarTuple("_Ts")


def bytewise(column: ColumnElement[str] | QueryableAttribute[str], /) -> ColumnElement[str]:
    """``column`` ordered and compared by code point (see the module docstring)."""
    return _Bytewise(column)


class _Bytewise(FunctionElement[str]):
    type = String()
    name = "bytewise"
    inherit_cache = True


@compiles(_Bytewise)
def _bytewise_default(element: _Bytewise, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(_Bytewise, "postgresql")
def _bytewise_postgresql(element: _Bytewise, compiler: SQLCompiler, **kw: Any) -> str:
    return f'{compiler.process(element.clauses, **kw)} COLLATE "C"'


def keyset(
    stmt: Select[*_Ts],
    key: Sequence[ColumnElement[Any] | QueryableAttribute[Any]],
    /,
    *,
    after: tuple[Any, ...] | None,
    limit: int | None,
    descending: bool = False,
) -> Select[*_Ts]:
    """``stmt`` ordered by ``key`` (ascending, or ``descending``: newest first), from just after the
    key ``after`` (None: the start), cut at ``limit + 1`` rows (None: every row)."""
    if after is not None:
        if len(after) != len(key):
            raise InvalidInput(f"a page must start after a key of {len(key)} parts, not {len(after)}")
        # A Python tuple: each value bound with its column's type.
        stmt = stmt.where(tuple_(*key) < after if descending else tuple_(*key) > after)
    stmt = stmt.order_by(*(part.desc() for part in key) if descending else key)
    if limit is not None:
        if limit < 1:
            raise InvalidInput("a page holds at least one row")
        stmt = stmt.limit(limit + 1)
    return stmt
