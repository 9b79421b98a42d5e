"""Keyset pagination: pages continue after the last item seen, whatever changed in between."""

from __future__ import annotations

import pytest

from servicetsunami.api.pagination import paginate
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
