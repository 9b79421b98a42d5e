"""A tenant's activity per day: syncs and other runs started, for the overview's chart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from servicetsunami.errors import InvalidInput
from servicetsunami.store.repositories import runs as runs_repo
from servicetsunami.tenancy import Principal, Scope

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

MAX_DAYS = 366


class DayActivity(BaseModel):
    day: str = Field(description="YYYY-MM-DD, UTC")
    syncs: int = Field(description="Sync runs started that day")
    runs: int = Field(description="Other runs started that day (a pipeline's tasks count in its run)")


class Activity(BaseModel):
    days: list[DayActivity] = Field(description="Oldest first, one entry per day, today last")


def daily_activity(svc: Services, principal: Principal, /, *, days: int = 14) -> Activity:
    """The caller's tenant's syncs and runs started on each of the last ``days`` days (today included)."""
    principal.require(Scope.READ)
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"days is between 1 and {MAX_DAYS}")
    today = datetime.now(UTC).date()
    first = today - timedelta(days=days - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=UTC)
    with svc.store.session() as session:
        counted = runs_repo.daily_counts(session, tenant_id=principal.tenant_id, since=since)
    figures = {(first + timedelta(days=i)).isoformat(): [0, 0] for i in range(days)}
    for day, is_sync, n in counted:
        if day in figures:
            figures[day][0 if is_sync else 1] += n
    return Activity(days=[DayActivity(day=d, syncs=s, runs=r) for d, (s, r) in figures.items()])
