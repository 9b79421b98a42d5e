"""``limit`` / ``cursor`` pagination for every list.

A cursor is opaque to callers: URL-safe base64 of the sort key of the last item returned, so a page
continues after that item even when rows were added or removed in between (keyset, not offset).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from pydantic import BaseModel, Field

from servicetsunami.errors import InvalidInput

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page; null on the last page")


def paginate(items: Sequence[T], /, *, key: Callable[[T], tuple[str, ...]], limit: int, cursor: str | None) -> Page[T]:
    ordered = sorted(items, key=key)
    if cursor:
        after = decode_cursor(cursor)
        ordered = [item for item in ordered if key(item) > after]
    page = ordered[:limit]
    more = len(ordered) > limit
    return Page[T](items=page, next_cursor=encode_cursor(key(page[-1])) if more and page else None)


def encode_cursor(key: tuple[str, ...]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, ...]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidInput("cursor is not one this server returned; start again without it") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput("cursor is not one this server returned; start again without it")
    return tuple(value)
