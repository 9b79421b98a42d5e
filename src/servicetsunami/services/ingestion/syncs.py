"""Syncs: a source table into bronze, run in the background, polled, cancelled.

A sync is its configuration (connection, source table, target, mode, cursor, key) and its runs,
which are runs of kind ``sync`` (:mod:`servicetsunami.services.runs`): queued, claimed by one worker
(at most ``sync.max_parallel`` per process), beating while they go, canceled on request. Different
tables sync in parallel, and a per-target lock file makes two runs into the same table (in any
process) refuse to overlap. The rows and the cursor are committed together by
:class:`~servicetsunami.services.ingestion.sync_runner.SyncRunner`; the run record is the visible
status, and the sync's saved state is a copy of what the table's last commit says.

The sync's own shape (:class:`SyncRunPublic`) keeps its words: ``pending`` for a queued run and
``cancelled`` for a canceled one.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from pydantic import BaseModel, Field

from servicetsunami.connectors.files.reader import snake_case
from servicetsunami.errors import Conflict, InvalidInput, NotFound
from servicetsunami.services.governance import pii
from servicetsunami.services.ingestion.connections import open_source
from servicetsunami.services.ingestion.sync_runner import SYNC_MODES, RunProgress, SyncPlan, SyncRunner
from servicetsunami.services.runs import service as runs
from servicetsunami.services.runs.context import RunContext
from servicetsunami.services.runs.kinds import RunKind, register
from servicetsunami.services.runs.model import RunPublic, run_public
from servicetsunami.store.models import Sync
from servicetsunami.store.repositories import audit as audit_repo
from servicetsunami.store.repositories import connections as connections_repo
from servicetsunami.store.repositories import runs as runs_repo
from servicetsunami.store.repositories import syncs as syncs_repo
from servicetsunami.tenancy import Principal, Scope, TableRef, check_identifier, parse_table_name

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

logger = logging.getLogger(__name__)


class SyncRunPublic(BaseModel):
    run_id: str
    sync_id: str
    status: str = Field(description="pending, running, succeeded, failed or cancelled")
    source_table: str
    bronze_table: str
    mode: str
    rows: int
    bytes: int
    batches: int
    table_version: int | None
    started_at: datetime
    finished_at: datetime | None
    duration_seconds: float | None
    error: str | None
    progress: dict[str, Any] = Field(default_factory=dict)
    hint: str | None = None


class SyncPublic(BaseModel):
    sync_id: str
    connection_id: str
    source_table: str
    bronze_table: str
    mode: str
    cursor_column: str | None
    primary_key: list[str]
    state: dict[str, Any]
    last_run: SyncRunPublic | None


def _execute(svc: Services, ctx: RunContext) -> dict[str, Any]:
    """The handler of ``sync`` runs: one SyncRunner over the sync's source, into its bronze table."""
    principal = ctx.principal
    with svc.store.session() as session:
        sync = syncs_repo.get_sync(session, str(ctx.params["sync_id"]), tenant_id=principal.tenant_id)
        kind = connections_repo.get_connection(session, sync.connection_id, tenant_id=principal.tenant_id).kind
        plan = SyncPlan(
            sync_id=sync.id,
            stream=sync.source_table,
            target=parse_table_name(sync.target_table, catalog=principal.catalog),
            mode=sync.mode,  # type: ignore[arg-type]  # checked when the sync was stored
            cursor_column=sync.cursor_column,
            primary_key=list(sync.primary_key or []),
            source_label=f"{kind}:{sync.connection_id}/{sync.source_table}",
        )
        connection_id = sync.connection_id
    with _target_lock(svc, plan.target):
        _fail_stale_runs(svc, principal, plan.sync_id, keep=ctx.run_id)
        source = open_source(svc, principal, connection_id)
        try:
            runner = SyncRunner(
                svc.engine,
                source,
                plan,
                run_id=ctx.run_id,
                batch_rows=svc.settings.sync.batch_rows,
                lookback=svc.settings.sync.lookback_seconds,
                on_progress=lambda p: _record_batch(svc, principal, plan, ctx, p, runner),
            )
            ctx.on_cancel(runner.cancel)
            ctx.set_live(lambda: _live(runner))
            ctx.progress(unit="rows", done=0, message="starting", force=True)
            progress = runner.run()
        finally:
            source.close()
    ctx.progress(**_counts(progress), message="done", force=True)
    return _counts(progress)


def _live(runner: SyncRunner) -> dict[str, Any]:
    live = runner.progress.as_dict()
    percent = runner.source.progress()
    return {**live, "batch_percent": percent}


register(RunKind("sync", _execute, max_parallel=lambda settings: settings.sync.max_parallel))


def sync_table_to_bronze(
    svc: Services,
    principal: Principal,
    connection_id: str,
    table_name: str,
    /,
    *,
    sync_mode: str = "full_refresh",
    cursor_column: str | None = None,
    primary_key: list[str] | None = None,
    target_table: str | None = None,
    wait_seconds: float | None = None,
    on_progress: Callable[[SyncRunPublic], None] | None = None,
) -> SyncRunPublic:
    """Configure (or update) the sync of ``table_name`` and start a run; wait up to ``wait_seconds``
    (default ``sync.wait_seconds``) and return its status; a longer run keeps going in the
    background: poll it with :func:`get_sync_status`."""
    run_id = start_sync(
        svc,
        principal,
        connection_id,
        table_name,
        sync_mode=sync_mode,
        cursor_column=cursor_column,
        primary_key=primary_key,
        target_table=target_table,
    )
    wait = svc.settings.sync.wait_seconds if wait_seconds is None else wait_seconds
    return wait_for_run(svc, principal, run_id, timeout=wait, on_progress=on_progress)


def start_sync(
    svc: Services,
    principal: Principal,
    connection_id: str,
    table_name: str,
    /,
    *,
    sync_mode: str = "full_refresh",
    cursor_column: str | None = None,
    primary_key: list[str] | None = None,
    target_table: str | None = None,
) -> str:
    principal.require(Scope.WRITE)
    if sync_mode not in SYNC_MODES:
        raise InvalidInput(f"sync_mode must be one of {', '.join(SYNC_MODES)}, not {sync_mode!r}")
    source = open_source(svc, principal, connection_id)
    try:
        stream = source.stream(table_name)
    finally:
        source.close()
    columns = {c.name for c in stream.columns}
    if sync_mode != "full_refresh" and cursor_column is None:
        if not stream.cursor_candidates:
            raise InvalidInput(f"{stream.name} has no column that suits a cursor; name one with cursor_column")
        cursor_column = stream.cursor_candidates[0]
    if cursor_column is not None and cursor_column not in columns:
        raise InvalidInput(f"cursor_column {cursor_column!r} is not a column of {stream.name}")
    keys = list(primary_key) if primary_key else list(stream.primary_key)
    if sync_mode == "incremental_merge" and not keys:
        raise InvalidInput(f"{stream.name} has no primary key; name the key columns with primary_key")
    missing = [k for k in keys if k not in columns]
    if missing:
        raise InvalidInput(f"primary_key column(s) {', '.join(missing)} are not columns of {stream.name}")
    target = _target(principal, stream.name, target_table)
    with svc.store.session(write_lock=True) as session:  # read, then write: SQLite's lock from the start
        sync = syncs_repo.upsert_sync(
            session,
            tenant_id=principal.tenant_id,
            connection_id=connection_id,
            source_table=stream.name,
            target_table=f"{target.schema}.{target.name}",
            mode=sync_mode,
            cursor_column=cursor_column,
            primary_key=keys,
        )
        sync_id = sync.id
    svc.engine.ensure_catalog(principal.catalog)
    run_id = runs.submit(svc, principal, "sync", params={"sync_id": sync_id}, resource_id=sync_id)
    with svc.store.session(write_lock=True) as session:  # read, then write, while the run may be writing
        syncs_repo.update_sync_state(session, sync_id, tenant_id=principal.tenant_id, last_run_id=run_id)
        audit_repo.record_audit(
            session,
            tenant_id=principal.tenant_id,
            subject=principal.subject,
            action="sync_table_to_bronze",
            target=str(target),
            meta={"run_id": run_id, "mode": sync_mode, "source": stream.name},
        )
    return run_id


def wait_for_run(
    svc: Services,
    principal: Principal,
    run_id: str,
    /,
    *,
    timeout: float,
    on_progress: Callable[[SyncRunPublic], None] | None = None,
) -> SyncRunPublic:
    """Wait (bounded) for a sync run, as :func:`servicetsunami.services.runs.service.wait_for_run` does
    for every run, seeing it in the sync's own shape."""
    get_sync_status(svc, principal, run_id)  # a run that is not a sync of this tenant is not found
    shown = None if on_progress is None else lambda run: on_progress(_sync_status(svc, principal, run))
    run = runs.wait_for_run(svc, principal, run_id, timeout=timeout, on_progress=shown)
    return _sync_status(svc, principal, run)


async def await_run(
    svc: Services,
    principal: Principal,
    run_id: str,
    /,
    *,
    timeout: float,
    on_progress: Callable[[SyncRunPublic], Awaitable[None]] | None = None,
) -> SyncRunPublic:
    """:func:`wait_for_run` for async doors (MCP progress notifications)."""

    async def shown(run: RunPublic) -> None:
        if on_progress is not None:
            await on_progress(_sync_status(svc, principal, run))

    run = await runs.await_run(svc, principal, run_id, timeout=timeout, on_progress=shown)
    return await anyio.to_thread.run_sync(partial(_sync_status, svc, principal, run))


def get_sync_status(svc: Services, principal: Principal, run_id: str, /) -> SyncRunPublic:
    return _sync_status(svc, principal, runs.get_run(svc, principal, run_id))


def cancel_sync(svc: Services, principal: Principal, run_id: str, /) -> SyncRunPublic:
    get_sync_status(svc, principal, run_id)  # only sync runs of this tenant
    run = runs.cancel_run(svc, principal, run_id, wait_seconds=30)
    return _sync_status(svc, principal, run)


def list_syncs(
    svc: Services,
    principal: Principal,
    *,
    connection_id: str | None = None,
    after: tuple[str, str] | None = None,
    limit: int | None = None,
) -> list[SyncPublic]:
    """The tenant's syncs (of one connection if given) by ``(bronze table, id)``; with ``after`` and
    ``limit``, one page of them plus the next sync if there is one."""
    principal.require(Scope.READ)
    with svc.store.session() as session:
        return [
            SyncPublic(
                sync_id=sync.id,
                connection_id=sync.connection_id,
                source_table=sync.source_table,
                bronze_table=sync.target_table,
                mode=sync.mode,
                cursor_column=sync.cursor_column,
                primary_key=list(sync.primary_key or []),
                state=dict(sync.state or {}),
                last_run=_public(run_public(run), sync) if run is not None else None,
            )
            for sync, run in syncs_repo.list_syncs(
                session, tenant_id=principal.tenant_id, connection_id=connection_id, after=after, limit=limit
            )
        ]


def list_source_syncs(
    svc: Services,
    principal: Principal,
    connection_id: str,
    /,
    *,
    after: tuple[str, str] | None = None,
    limit: int | None = None,
) -> list[SyncPublic]:
    """The syncs of one connection of the caller's tenant (:class:`NotFound` for another's)."""
    principal.require(Scope.READ)
    with svc.store.session() as session:
        connections_repo.get_connection(session, connection_id, tenant_id=principal.tenant_id)
    return list_syncs(svc, principal, connection_id=connection_id, after=after, limit=limit)


# -- internals ------------------------------------------------------------------------------------


def _target(principal: Principal, stream: str, target_table: str | None) -> TableRef:
    if target_table:
        ref = parse_table_name(target_table, catalog=principal.catalog)
    else:
        name = snake_case(stream.rpartition(".")[2]) or "table"
        ref = TableRef(principal.catalog, "bronze", check_identifier(name, what="bronze table name"))
    if ref.schema != "bronze":
        raise InvalidInput("syncs land in bronze; use transforms for silver and gold")
    return ref


@contextlib.contextmanager
def _target_lock(svc: Services, target: TableRef) -> Iterator[None]:
    path = svc.settings.resolved_home / "locks" / f"sync-{target.catalog}.{target.schema}.{target.name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict(
                f"another sync into {target.schema}.{target.name} is running; wait for it or cancel it"
            ) from None
        yield  # closing the file releases the lock


def _fail_stale_runs(svc: Services, principal: Principal, sync_id: str, *, keep: str) -> None:
    """Runs of this sync still 'running' while we hold its lock belong to a process that died."""
    with svc.store.session(write_lock=True) as session:
        for run in runs_repo.list_runs(
            session, tenant_id=principal.tenant_id, kind="sync", state="running", resource_id=sync_id
        ):
            if run.id != keep:
                runs_repo.finish(
                    session,
                    run.id,
                    state="failed",
                    error="the process running it stopped (killed or crashed) before it finished",
                    error_code="worker_lost",
                )


def _record_batch(
    svc: Services, principal: Principal, plan: SyncPlan, ctx: RunContext, p: RunProgress, runner: SyncRunner
) -> None:
    alive = ctx.progress(**_counts(p), progress=p.as_dict(), force=True)
    with svc.store.session(write_lock=True) as session:
        syncs_repo.update_sync_state(
            session,
            plan.sync_id,
            tenant_id=principal.tenant_id,
            state={"cursor": p.as_dict()["cursor"], "version": p.version},
        )
    if p.version is not None:  # every batch written is checked for personal data
        pii.flag_written(svc, principal, plan.target, columns=())
    if not alive:  # the run was ended from elsewhere (a cancel in another process)
        runner.cancel()


def _counts(p: RunProgress) -> dict[str, Any]:
    return {"done": p.rows, "rows": p.rows, "bytes": p.bytes, "batches": p.batches, "table_version": p.version}


_STATUS = {"queued": "pending", "canceled": "cancelled", "timed_out": "failed", "skipped": "cancelled"}


def sync_status(state: str, /) -> str:
    """A run's state in the sync's own words (``pending``, ``cancelled``)."""
    return _STATUS.get(state, state)


def _sync_status(svc: Services, principal: Principal, run: RunPublic) -> SyncRunPublic:
    if run.kind != "sync" or run.resource_id is None:
        raise NotFound(f"sync run {run.run_id} does not exist")
    with svc.store.session() as session:
        sync = syncs_repo.get_sync(session, run.resource_id, tenant_id=principal.tenant_id)
        return _public(run, sync)


def _public(run: RunPublic, sync: Sync) -> SyncRunPublic:
    facts = {**run.progress.detail, **(run.result or {})}
    detail = dict(run.progress.detail)
    progress = dict(detail.pop("progress", None) or {})
    progress.update({k: v for k, v in detail.items() if k not in ("rows", "bytes", "batches", "table_version")})
    return SyncRunPublic(
        run_id=run.run_id,
        sync_id=sync.id,
        status=sync_status(run.state),
        source_table=sync.source_table,
        bronze_table=sync.target_table,
        mode=sync.mode,
        rows=int(facts.get("rows") or 0),
        bytes=int(facts.get("bytes") or 0),
        batches=int(facts.get("batches") or 0),
        table_version=facts.get("table_version"),
        started_at=run.started_at or run.created_at,
        finished_at=run.finished_at,
        duration_seconds=run.duration_seconds,
        error=run.error,
        progress=progress,
        hint=f"still running; poll get_sync_status('{run.run_id}') or cancel_sync('{run.run_id}')"
        if run.hint
        else None,
    )
