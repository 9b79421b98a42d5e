"""Keyset pagination: pages continue after the last item seen, whatever changed in between."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from servicetsunami.api.pagination import cursor_key, encode_cursor, page_of, paginate, timestamp
from servicetsunami.errors import InvalidInput


def key(name: str) -> tuple[str, ...]:
    return (name,)


def test_pages_cover_every_item_once_in_order() -> None:
    names = [f"t{i:02d}" for i in range(7)]
    seen, cursor = [], None
    while True:
        page = paginate(names[::-1], key=key, limit=3, cursor=cursor)
        seen.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == names


def test_an_item_added_before_the_cursor_does_not_shift_the_next_page() -> None:
    first = paginate(["b", "c", "d", "e"], key=key, limit=2, cursor=None)
    assert first.items == ["b", "c"]
    after_insert = paginate(["a", "b", "c", "d", "e"], key=key, limit=2, cursor=first.next_cursor)
    assert after_insert.items == ["d", "e"] and after_insert.next_cursor is None


@pytest.mark.parametrize("cursor", ["%%%", "bm90IGpzb24", "eyJhIjogMX0"])
def test_a_cursor_we_did_not_make_is_invalid_input(cursor: str) -> None:
    with pytest.raises(InvalidInput):
        paginate(["a"], key=key, limit=1, cursor=cursor)


def test_a_page_cut_in_sql_has_a_cursor_only_when_the_extra_row_came_back() -> None:
    more = page_of(["a", "b", "c"], key=key, limit=2)
    assert more.items == ["a", "b"] and cursor_key(more.next_cursor, str) == ("b",)
    last = page_of(["c"], key=key, limit=2)
    assert last.items == ["c"] and last.next_cursor is None
    assert page_of([], key=key, limit=2).next_cursor is None


def test_a_cursor_gives_back_the_typed_key_it_was_made_from() -> None:
    created = datetime(2025, 3, 1, 12, 30, 0, 250, tzinfo=UTC)
    cursor = encode_cursor((created.isoformat(), "key-1"))
    assert cursor_key(cursor, timestamp, str) == (created, "key-1")
    assert cursor_key(None, timestamp, str) is None and cursor_key("", str) is None


@pytest.mark.parametrize(
    ("parts", "parsers"),
    [
        (("only-one",), (str, str)),
        (("a", "b", "c"), (str, str)),
        (("yesterday", "key-1"), (timestamp, str)),
        (("2025-03-01T12:30:00", "key-1"), (timestamp, str)),  # no time zone: not one we wrote
    ],
)
def test_a_cursor_of_another_shape_is_invalid_input(
    parts: tuple[str, ...], parsers: tuple[Callable[[str], object], ...]
) -> None:
    with pytest.raises(InvalidInput) as caught:
        cursor_key(encode_cursor(parts), *parsers)
    assert caught.value.code == "invalid_input"
