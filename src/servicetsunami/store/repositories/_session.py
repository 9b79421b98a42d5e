"""Session housekeeping the repository modules share."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from servicetsunami.store.models import ApiKey, OAuthGrant, Sync

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


def touch_last_used(
    session: Session, cls: type[ApiKey] | type[OAuthGrant], row_id: str, /, *, now: datetime, min_interval: timedelta
) -> bool:
    """Set a credential's ``last_used_at`` to ``now`` unless it was set less than ``min_interval``
    ago: one conditional UPDATE, so the requests of every worker write the row at most once per
    interval. Returns whether the row was written."""
    result = session.execute(
        update(cls)
        .where(cls.id == row_id, or_(cls.last_used_at.is_(None), cls.last_used_at < now - min_interval))
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)
