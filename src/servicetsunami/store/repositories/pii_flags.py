"""The personal-data flags of each table of a tenant, one row a table (see the package docstring
for the conventions)."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from servicetsunami.errors import NotFound
from servicetsunami.store.models import PiiFlags, utcnow
from servicetsunami.store.repositories._statements import param

# Built once, on the table (Core): read at every write of a table and every masked query.
_FLAGS = cast(Table, PiiFlags.__table__)
_ONE = select(_FLAGS.c.flags, _FLAGS.c.pending).where(
    _FLAGS.c.tenant_id == param(_FLAGS.c.tenant_id),
    _FLAGS.c.table_name == param(_FLAGS.c.table_name),
)


def flags_of(session: Session, tenant_id: str, table: str, /) -> tuple[dict[str, str], bool] | None:
    """A table's flags (column -> kind) and whether its last check failed; None if never checked."""
    row = session.execute(_ONE, {"p_tenant_id": tenant_id, "p_table_name": table}).first()
    return None if row is None else (dict(row[0] or {}), bool(row[1]))


def merge_flags(session: Session, tenant_id: str, table: str, found: dict[str, str], /) -> dict[str, str]:
    """Add ``found`` to a table's flags and record it checked; returns all its flags."""
    row = _locked(session, tenant_id, table)
    if row is None:
        return _insert(session, PiiFlags(tenant_id=tenant_id, table_name=table, flags=dict(found), pending=False))
    merged = {**dict(row.flags or {}), **found}
    if row.pending or merged != row.flags:
        row.flags, row.pending, row.checked_at = merged, False, utcnow()
        session.flush()
    return merged


def mark_pending(session: Session, tenant_id: str, table: str, /) -> None:
    """Record that a table's check failed (its flags so far are kept): it is checked at its next read."""
    row = _locked(session, tenant_id, table)
    if row is None:
        _insert(session, PiiFlags(tenant_id=tenant_id, table_name=table, flags={}, pending=True))
    elif not row.pending:
        row.pending, row.checked_at = True, utcnow()
        session.flush()


def drop_flags(session: Session, tenant_id: str, table: str, /) -> None:
    session.execute(delete(PiiFlags).where(PiiFlags.tenant_id == tenant_id, PiiFlags.table_name == table))


def _locked(session: Session, tenant_id: str, table: str) -> PiiFlags | None:
    return session.get(PiiFlags, (tenant_id, table), with_for_update=True, populate_existing=True)


def _insert(session: Session, row: PiiFlags) -> dict[str, str]:
    """Insert ``row``; the loser of a concurrent insert of the same table merges into the winner's.
    Returns the table's flags."""
    try:
        with session.begin_nested():
            session.add(row)
        return dict(row.flags)
    except IntegrityError:
        winner = _locked(session, row.tenant_id, row.table_name)
        if winner is None:  # the conflict was not on the table (an unknown tenant)
            raise NotFound("tenant not found") from None
        winner.flags = {**dict(winner.flags or {}), **dict(row.flags or {})}
        winner.pending, winner.checked_at = row.pending, utcnow()
        session.flush()
        return dict(winner.flags)
