"""Session housekeeping the repository modules share."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm import Session

from servicetsunami.store.models import Sync

_Row = TypeVar("_Row", bound=Sync)


def expire_loaded(session: Session, cls: type[_Row], matches: Callable[[_Row], bool]) -> set[str]:
    """Expire the loaded objects of ``cls`` that ``matches`` picks (changed behind the ORM's back);
    returns their ids. Expired rows reload on next access, or raise if they were deleted."""
    ids: set[str] = set()
    for obj in list(session.identity_map.values()):
        if isinstance(obj, cls) and matches(obj):
            ids.add(obj.id)
            session.expire(obj)
    return ids
