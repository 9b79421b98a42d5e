"""Syncs (a source table copied into a bronze table, with its saved state) and their runs (see the
package docstring for the conventions)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from servicetsunami.errors import Conflict, InvalidInput, NotFound
from servicetsunami.store.models import (
    FINISHED_RUN_STATUSES,
    RUN_STATUSES,
    SYNC_MODES,
    Sync,
    SyncRun,
    utcnow,
)
from servicetsunami.store.repositories._keyset import bytewise, keyset
from servicetsunami.store.repositories._session import expire_loaded
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
) -> list[tuple[Sync, SyncRun | None]]:
    """The tenant's syncs by ``(target_table, id)``, each with its latest run (None before the
    first run): those after ``after``, at most ``limit + 1``."""
    stmt = select(Sync, SyncRun).outerjoin(SyncRun, SyncRun.id == Sync.last_run_id).where(Sync.tenant_id == tenant_id)
    if connection_id is not None:
        stmt = stmt.where(Sync.connection_id == connection_id)
    stmt = keyset(stmt, (bytewise(Sync.target_table), bytewise(Sync.id)), after=after, limit=limit)
    return [(row[0], row[1]) for row in session.execute(stmt)]


def update_sync_state(
    session: Session, sync_id: str, /, *, tenant_id: str, state: dict[str, Any], last_run_id: str | None = None
) -> Sync:
    """Replace the saved state (call it in the transaction that records the commit it describes)."""
    sync = get_sync(session, sync_id, tenant_id=tenant_id)
    sync.state = dict(state)
    if last_run_id is not None:
        sync.last_run_id = last_run_id
    session.flush()
    return sync


def delete_sync(session: Session, sync_id: str, /, *, tenant_id: str) -> None:
    """Delete the sync and its runs; :class:`NotFound` if not the tenant's."""
    result = session.execute(
        delete(Sync)
        .where(Sync.id == sync_id, Sync.tenant_id == tenant_id)
        .execution_options(synchronize_session="fetch")
    )
    if not getattr(result, "rowcount", 0):
        raise NotFound("sync not found")
    expire_loaded(session, SyncRun, lambda run: run.sync_id == sync_id)


# ---------------------------------------------------------------------------------------------
# runs


def create_run(
    session: Session,
    /,
    *,
    tenant_id: str,
    sync_id: str,
    status: str = "pending",
    meta: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> SyncRun:
    """Start a run record for the tenant's sync and make it the sync's latest run."""
    _check_status(status)
    sync = get_sync(session, sync_id, tenant_id=tenant_id)
    moment = now or utcnow()
    run = SyncRun(
        tenant_id=tenant_id,
        sync_id=sync.id,
        status=status,
        started_at=moment,
        updated_at=moment,
        meta=dict(meta or {}),
    )
    session.add(run)
    session.flush()
    sync.last_run_id = run.id
    session.flush()
    return run


def get_run(session: Session, run_id: str, /, *, tenant_id: str) -> SyncRun:
    run = session.scalar(select(SyncRun).where(SyncRun.id == run_id, SyncRun.tenant_id == tenant_id))
    if run is None:
        raise NotFound("sync run not found")
    return run


def list_runs(session: Session, sync_id: str, /, *, tenant_id: str, limit: int = 50) -> list[SyncRun]:
    """The sync's runs, newest first."""
    get_sync(session, sync_id, tenant_id=tenant_id)
    stmt = (
        select(SyncRun)
        .where(SyncRun.sync_id == sync_id, SyncRun.tenant_id == tenant_id)
        .order_by(SyncRun.started_at.desc(), SyncRun.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def update_run(
    session: Session,
    run_id: str,
    /,
    *,
    tenant_id: str,
    status: str | None = None,
    progress: dict[str, Any] | None = None,
    rows: int | None = None,
    bytes: int | None = None,
    batches: int | None = None,
    table_version: int | None = None,
    error: str | None = None,
    finished_at: datetime | None = None,
) -> SyncRun:
    """Record progress or the outcome of a run (None leaves a field as it is).

    Moving to a finished status (succeeded, failed, cancelled) sets ``finished_at`` unless given.
    A run that has already finished cannot change any more: :class:`Conflict`. A worker thus learns
    that its run was cancelled, or failed as stale, at its next progress update.
    """
    if status is not None:
        _check_status(status)
    run = get_run(session, run_id, tenant_id=tenant_id)
    if run.status in FINISHED_RUN_STATUSES:
        raise Conflict(f"sync run already {run.status}", status=run.status)
    changes: dict[str, Any] = {
        "status": status,
        "rows": rows,
        "bytes": bytes,
        "batches": batches,
        "table_version": table_version,
        "error": error,
        "finished_at": finished_at,
    }
    for key, value in changes.items():
        if value is not None:
            setattr(run, key, value)
    if progress is not None:
        run.progress = dict(progress)
    if run.status in FINISHED_RUN_STATUSES and run.finished_at is None:
        run.finished_at = utcnow()
    run.updated_at = utcnow()
    session.flush()
    return run


def mark_stale_runs(
    session: Session,
    /,
    *,
    run_ids: Sequence[str] | None = None,
    older_than: datetime | None = None,
    statuses: Sequence[str] = ("running",),
    error: str = "the process running this sync stopped before it finished; run the sync again to resume",
    now: datetime | None = None,
) -> list[str]:
    """Fail runs left unfinished by a dead process; returns the ids of the runs it failed.

    Picks runs in ``statuses`` that are among ``run_ids`` and/or whose last update (heartbeat) is
    before ``older_than``; at least one of the two must be given. Across all tenants: this is the
    runner's housekeeping, not a tenant's request.
    """
    if run_ids is None and older_than is None:
        raise InvalidInput("mark_stale_runs needs run ids or a cut-off time")
    for status in statuses:
        _check_status(status)
    stmt = update(SyncRun).where(SyncRun.status.in_(list(statuses)))
    if run_ids is not None:
        if not run_ids:
            return []
        stmt = stmt.where(SyncRun.id.in_(list(run_ids)))
    if older_than is not None:
        stmt = stmt.where(SyncRun.updated_at < older_than)
    moment = now or utcnow()
    result = session.execute(
        stmt.values(status="failed", error=error, finished_at=moment, updated_at=moment)
        .returning(SyncRun.id)
        .execution_options(synchronize_session=False)
    )
    failed = sorted(str(row[0]) for row in result)
    # Runs this session already loaded must not keep showing "running".
    expire_loaded(session, SyncRun, lambda run: run.id in failed)
    return failed


def _check_status(status: str) -> None:
    if status not in RUN_STATUSES:
        raise InvalidInput(f"run status {status!r} is not one of {', '.join(RUN_STATUSES)}")
