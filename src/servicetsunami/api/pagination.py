"""``limit`` / ``cursor`` pagination for every list.

A cursor is opaque to callers: URL-safe base64 of the sort key of the last item returned, so a page
continues after that item even when rows were added or removed in between (keyset, not offset).

Lists of store rows (datasets, users, API keys, data sources, a source's syncs) are cut by the
database: the route reads the cursor back into a typed key with :func:`cursor_key`, the service
passes ``after`` and ``limit`` down to the repository, which returns at most ``limit + 1`` rows
(:mod:`servicetsunami.store.repositories`), and :func:`page_of` keeps ``limit`` of them and writes
the next cursor when the extra row came back.

Two lists are cut here in memory by :func:`paginate`, because their items are not rows of the store
and there is no query to put a keyset condition into: the tables of the catalog (listed by the
engine from the lakehouse itself, local or Databricks) and a source's tables and views (discovered
from the source on every call). Both are bounded by what one catalog or one source holds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from pydantic import BaseModel, Field

from servicetsunami.services.cursors import cursor_key, decode_cursor, encode_cursor, timestamp

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page; null on the last page")


def page_of(rows: Sequence[T], /, *, key: Callable[[T], tuple[str, ...]], limit: int) -> Page[T]:
    """The page of a list the store cut: ``rows`` holds up to ``limit + 1`` items in key order, the
    extra one only saying that another page follows."""
    items = list(rows[:limit])
    more = len(rows) > limit
    return Page[T](items=items, next_cursor=encode_cursor(key(items[-1])) if more and items else None)


def paginate(items: Sequence[T], /, *, key: Callable[[T], tuple[str, ...]], limit: int, cursor: str | None) -> Page[T]:
    """The page of a list held whole in memory (see the module docstring for which lists)."""
    ordered = sorted(items, key=key)
    if cursor:
        after = decode_cursor(cursor)
        ordered = [item for item in ordered if key(item) > after]
    return page_of(ordered[: limit + 1], key=key, limit=limit)


__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "Page",
    "cursor_key",
    "decode_cursor",
    "encode_cursor",
    "page_of",
    "paginate",
    "timestamp",
]
