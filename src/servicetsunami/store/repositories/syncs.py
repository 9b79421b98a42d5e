"""Syncs (a source table copied into a bronze table, with its saved state) and their runs (see the
package docstring for the conventions)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from servicetsunami.errors import InvalidInput, NotFound
from servicetsunami.store.models import SYNC_MODES, Run, Sync, utcnow
from servicetsunami.store.repositories._keyset import bytewise, keyset
from servicetsunami.store.repositories.connections import get_connection


def upsert_sync(
    session: Session,
    /,
    *,
    tenant_id: str,
    connection_id: str,
    source_table: str,
    target_table: str,
    mode: str,
    cursor_column: str | None = None,
    primary_key: Sequence[str] = (),
    state: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
) -> Sync:
    """Create the sync writing ``target_table`` for the tenant, or update it in place (same id).

    The connection must be the tenant's (:class:`NotFound` otherwise). ``state`` None keeps the saved
    state (cursor, commit sequence) as it is; deciding when an old cursor no longer applies is the
    sync service's call, and the commit sequence must never go backwards. ``meta`` None keeps it.
    """
    if mode not in SYNC_MODES:
        raise InvalidInput(f"sync mode {mode!r} is not one of {', '.join(SYNC_MODES)}")
    get_connection(session, connection_id, tenant_id=tenant_id)
    fields: dict[str, Any] = {
        "connection_id": connection_id,
        "source_table": source_table,
        "mode": mode,
        "cursor_column": cursor_column,
        "primary_key": list(primary_key),
    }
    if state is not None:
        fields["state"] = dict(state)
    if meta is not None:
        fields["meta"] = dict(meta)
    sync = find_sync_by_target(session, target_table, tenant_id=tenant_id)
    if sync is None:
        try:
            with session.begin_nested():
                sync = Sync(tenant_id=tenant_id, target_table=target_table, **fields)
                session.add(sync)
            return sync
        except IntegrityError:
            sync = find_sync_by_target(session, target_table, tenant_id=tenant_id)
            if sync is None:
                raise
    for key, value in fields.items():
        setattr(sync, key, value)
    sync.updated_at = utcnow()
    session.flush()
    return sync


def get_sync(session: Session, sync_id: str, /, *, tenant_id: str) -> Sync:
    sync = session.scalar(select(Sync).where(Sync.id == sync_id, Sync.tenant_id == tenant_id))
    if sync is None:
        raise NotFound("sync not found")
    return sync


def find_sync_by_target(session: Session, target_table: str, /, *, tenant_id: str) -> Sync | None:
    return session.scalar(select(Sync).where(Sync.tenant_id == tenant_id, Sync.target_table == target_table))


def list_syncs(
    session: Session,
    /,
    *,
    tenant_id: str,
    connection_id: str | None = None,
    after: tuple[str, str] | None = None,
    limit: int | None = None,
) -> list[tuple[Sync, Run | None]]:
    """The tenant's syncs by ``(target_table, id)``, each with its latest run (None before the
    first run): those after ``after``, at most ``limit + 1``."""
    stmt = select(Sync, Run).outerjoin(Run, Run.id == Sync.last_run_id).where(Sync.tenant_id == tenant_id)
    if connection_id is not None:
        stmt = stmt.where(Sync.connection_id == connection_id)
    stmt = keyset(stmt, (bytewise(Sync.target_table), bytewise(Sync.id)), after=after, limit=limit)
    return [(row[0], row[1]) for row in session.execute(stmt)]


def update_sync_state(
    session: Session,
    sync_id: str,
    /,
    *,
    tenant_id: str,
    state: dict[str, Any] | None = None,
    last_run_id: str | None = None,
) -> Sync:
    """Replace the saved state (call it in the transaction that records the commit it describes)
    and/or point at the sync's newest run."""
    sync = get_sync(session, sync_id, tenant_id=tenant_id)
    if state is not None:
        sync.state = dict(state)
    if last_run_id is not None:
        sync.last_run_id = last_run_id
    session.flush()
    return sync


def delete_sync(session: Session, sync_id: str, /, *, tenant_id: str) -> None:
    """Delete the sync and its runs; :class:`NotFound` if not the tenant's."""
    delete_runs_of(session, select(Sync.id).where(Sync.id == sync_id), tenant_id=tenant_id)
    result = session.execute(
        delete(Sync)
        .where(Sync.id == sync_id, Sync.tenant_id == tenant_id)
        .execution_options(synchronize_session="fetch")
    )
    if not getattr(result, "rowcount", 0):
        raise NotFound("sync not found")


def delete_runs_of(session: Session, sync_ids: Any, /, *, tenant_id: str) -> None:
    """Delete the runs of the syncs ``sync_ids`` (a list or a subquery); runs are not tied to their
    sync by a foreign key, so deleting a sync or its connection deletes its runs here."""
    session.execute(
        delete(Run)
        .where(Run.kind == "sync", Run.resource_id.in_(sync_ids), Run.tenant_id == tenant_id)
        .execution_options(synchronize_session="fetch")
    )
