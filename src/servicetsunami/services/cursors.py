"""Page cursors, shared by every door that pages a list (REST's ``?cursor=``, MCP tools'
``cursor``): URL-safe base64 of the JSON sort key of the last item returned, opaque to callers, read
back into a typed key. :mod:`servicetsunami.api.pagination` builds REST's pages on them."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from servicetsunami.errors import InvalidInput

_NOT_OURS = "cursor is not one this server returned; start again without it"


def cursor_key(cursor: str | None, /, *parts: Callable[[str], Any]) -> tuple[Any, ...] | None:
    """The sort key ``cursor`` continues after, part ``i`` read by ``parts[i]`` (``str``,
    :func:`timestamp`); None without a cursor. :class:`InvalidInput` for a cursor of another shape."""
    if not cursor:
        return None
    key = decode_cursor(cursor)
    if len(key) != len(parts):
        raise InvalidInput(_NOT_OURS)
    try:
        return tuple(parse(part) for parse, part in zip(parts, key, strict=True))
    except ValueError:
        raise InvalidInput(_NOT_OURS) from None


def timestamp(part: str, /) -> datetime:
    """A cursor part written by ``isoformat()`` of an aware datetime (ValueError for anything else)."""
    value = datetime.fromisoformat(part)
    if value.tzinfo is None:
        raise ValueError("a cursor timestamp carries its time zone")
    return value


def encode_cursor(key: tuple[str, ...]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, ...]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidInput(_NOT_OURS) from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(_NOT_OURS)
    return tuple(value)
