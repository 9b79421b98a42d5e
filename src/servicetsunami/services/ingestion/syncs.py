"""Syncs: a source table into bronze, run in the background, polled, cancelled.

A sync is its configuration (connection, source table, target, mode, cursor, key) and its runs.
Runs execute in a thread pool (``sync.max_parallel``); different tables sync in parallel, and a
per-target lock file makes two runs into the same table (in any process) refuse to overlap. The
rows and the cursor are committed together by :class:`~servicetsunami.services.ingestion.sync_runner.SyncRunner`;
the run record in the system store is the visible status, and the sync's saved state is a copy of
what the table's last commit says.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from servicetsunami.connectors.files.reader import snake_case
from servicetsunami.errors import Conflict, InvalidInput, NotFound, TsunamiError
from servicetsunami.services.container import Services
from servicetsunami.services.ingestion.connections import open_source
from servicetsunami.services.ingestion.sync_runner import SYNC_MODES, RunProgress, SyncCancelled, SyncPlan, SyncRunner
from servicetsunami.store import repositories as repo
from servicetsunami.store.models import Sync, SyncRun
from servicetsunami.tenancy import Principal, Scope, TableRef, check_identifier, parse_table_name

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


class SyncManager:
    """The runs of this process. One per :class:`Services`."""

    def __init__(self, svc: Services) -> None:
        self._svc = svc
        self._pool = ThreadPoolExecutor(max_workers=svc.settings.sync.max_parallel, thread_name_prefix="sync")
        self._runners: dict[str, SyncRunner] = {}
        self._futures: dict[str, Future[None]] = {}
        self._guard = threading.Lock()

    def submit(self, principal: Principal, sync: Sync, run_id: str) -> None:
        future = self._pool.submit(self._execute, principal, sync.id, run_id)
        with self._guard:
            self._futures[run_id] = future

    def runner(self, run_id: str) -> SyncRunner | None:
        with self._guard:
            return self._runners.get(run_id)

    def future(self, run_id: str) -> Future[None] | None:
        with self._guard:
            return self._futures.get(run_id)

    def shutdown(self) -> None:
        with self._guard:
            runners = list(self._runners.values())
        for runner in runners:
            runner.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _execute(self, principal: Principal, sync_id: str, run_id: str) -> None:
        svc = self._svc
        with svc.store.session() as session:
            sync = repo.get_sync(session, sync_id, tenant_id=principal.tenant_id)
            plan = SyncPlan(
                sync_id=sync.id,
                stream=sync.source_table,
                target=parse_table_name(sync.target_table, catalog=principal.catalog),
                mode=sync.mode,  # type: ignore[arg-type]  # checked when the sync was stored
                cursor_column=sync.cursor_column,
                primary_key=list(sync.primary_key or []),
                source_label=f"postgres:{sync.connection_id}/{sync.source_table}",
            )
            connection_id = sync.connection_id
        try:
            with _target_lock(svc, plan.target):
                _fail_stale_runs(svc, principal, sync_id, keep=run_id)
                self._run(principal, plan, connection_id, run_id)
        except Conflict as exc:
            _finish(svc, principal, run_id, "failed", error=exc.message)
        except Exception as exc:  # every failure ends the run with a status; nothing propagates
            logger.exception("sync run %s failed", run_id)
            _finish(svc, principal, run_id, "failed", error=_message(exc))

    def _run(self, principal: Principal, plan: SyncPlan, connection_id: str, run_id: str) -> None:
        svc = self._svc
        source = open_source(svc, principal, connection_id)
        runner = SyncRunner(
            svc.engine,
            source,
            plan,
            run_id=run_id,
            batch_rows=svc.settings.sync.batch_rows,
            lookback=svc.settings.sync.lookback_seconds,
            on_progress=lambda p: _record_batch(svc, principal, plan, run_id, p, runner_ref),
        )
        runner_ref = [runner]
        with self._guard:
            self._runners[run_id] = runner
        try:
            _update(svc, principal, run_id, status="running")
            progress = runner.run()
            _finish(svc, principal, run_id, "succeeded", progress=progress)
        except SyncCancelled as exc:
            _finish(svc, principal, run_id, "cancelled", error=exc.message, progress=runner.progress)
        except TsunamiError as exc:
            _finish(svc, principal, run_id, "failed", error=exc.message, progress=runner.progress)
        finally:
            source.close()
            with self._guard:
                self._runners.pop(run_id, None)


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
    with svc.store.session() as session:
        sync = repo.upsert_sync(
            session,
            tenant_id=principal.tenant_id,
            connection_id=connection_id,
            source_table=stream.name,
            target_table=f"{target.schema}.{target.name}",
            mode=sync_mode,
            cursor_column=cursor_column,
            primary_key=keys,
        )
        run = repo.create_run(session, tenant_id=principal.tenant_id, sync_id=sync.id)
        repo.record_audit(
            session,
            tenant_id=principal.tenant_id,
            subject=principal.subject,
            action="sync_table_to_bronze",
            target=str(target),
            meta={"run_id": run.id, "mode": sync_mode, "source": stream.name},
        )
        run_id = run.id
    svc.engine.ensure_catalog(principal.catalog)
    svc.syncs.submit(principal, sync, run_id)
    return run_id


def wait_for_run(
    svc: Services,
    principal: Principal,
    run_id: str,
    /,
    *,
    timeout: float,
    on_progress: Callable[[SyncRunPublic], None] | None = None,
    poll_seconds: float = 0.5,
) -> SyncRunPublic:
    deadline = time.monotonic() + max(timeout, 0)
    future = svc.syncs.future(run_id)
    while True:
        remaining = deadline - time.monotonic()
        if future is not None:
            with contextlib.suppress(TimeoutError):
                future.result(timeout=max(0.0, min(poll_seconds, remaining)))
        status = get_sync_status(svc, principal, run_id)
        if status.finished_at is not None or remaining <= 0:
            if status.finished_at is None:
                status.hint = f"still running; poll get_sync_status('{run_id}') or cancel_sync('{run_id}')"
            return status
        if on_progress is not None:
            on_progress(status)
        if future is None:  # a run of another process: poll the store
            time.sleep(min(poll_seconds, max(remaining, 0)))


def get_sync_status(svc: Services, principal: Principal, run_id: str, /) -> SyncRunPublic:
    principal.require(Scope.READ)
    with svc.store.session() as session:
        run = repo.get_run(session, run_id, tenant_id=principal.tenant_id)
        sync = repo.get_sync(session, run.sync_id, tenant_id=principal.tenant_id)
        public = _run_public(run, sync)
    runner = svc.syncs.runner(run_id) if svc._syncs is not None else None
    if runner is not None and public.finished_at is None:
        live = runner.progress.as_dict()
        percent = runner.source.progress()
        public.progress = {**public.progress, **live, "batch_percent": percent}
        public.rows = max(public.rows, live["rows"])
    return public


def cancel_sync(svc: Services, principal: Principal, run_id: str, /) -> SyncRunPublic:
    principal.require(Scope.WRITE)
    status = get_sync_status(svc, principal, run_id)
    if status.finished_at is not None:
        raise Conflict(f"run {run_id} already ended ({status.status})")
    runner = svc.syncs.runner(run_id)
    if runner is not None:
        runner.cancel()
        future = svc.syncs.future(run_id)
        if future is not None:
            with contextlib.suppress(TimeoutError):
                future.result(timeout=30)
    else:  # pending here, or running in another process: it stops at its next batch
        _finish(svc, principal, run_id, "cancelled", error="cancelled by request")
    return get_sync_status(svc, principal, run_id)


def list_syncs(svc: Services, principal: Principal) -> list[SyncPublic]:
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
                last_run=_run_public(run, sync) if run is not None else None,
            )
            for sync, run in repo.list_syncs(session, tenant_id=principal.tenant_id)
        ]


def list_source_syncs(svc: Services, principal: Principal, connection_id: str, /) -> list[SyncPublic]:
    """The syncs of one connection of the caller's tenant (:class:`NotFound` for another's)."""
    principal.require(Scope.READ)
    with svc.store.session() as session:
        repo.get_connection(session, connection_id, tenant_id=principal.tenant_id)
    return [s for s in list_syncs(svc, principal) if s.connection_id == connection_id]


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
    with svc.store.session() as session:
        stale = [
            r.id
            for r in repo.list_runs(session, sync_id, tenant_id=principal.tenant_id)
            if r.status == "running" and r.id != keep
        ]
        if stale:
            repo.mark_stale_runs(session, run_ids=stale)


def _record_batch(
    svc: Services, principal: Principal, plan: SyncPlan, run_id: str, p: RunProgress, runner: list[SyncRunner]
) -> None:
    try:
        with svc.store.session() as session:
            repo.update_run(
                session,
                run_id,
                tenant_id=principal.tenant_id,
                progress=p.as_dict(),
                rows=p.rows,
                bytes=p.bytes,
                batches=p.batches,
                table_version=p.version,
            )
            repo.update_sync_state(
                session,
                plan.sync_id,
                tenant_id=principal.tenant_id,
                state={"cursor": p.as_dict()["cursor"], "version": p.version},
                last_run_id=run_id,
            )
    except Conflict:  # the run was ended from elsewhere (cancel_sync in another process)
        runner[0].cancel()


def _update(svc: Services, principal: Principal, run_id: str, **fields: Any) -> None:
    with svc.store.session() as session:
        repo.update_run(session, run_id, tenant_id=principal.tenant_id, **fields)


def _finish(
    svc: Services,
    principal: Principal,
    run_id: str,
    status: str,
    *,
    error: str | None = None,
    progress: RunProgress | None = None,
) -> None:
    fields: dict[str, Any] = {"status": status, "error": error}
    if progress is not None:
        fields |= {
            "progress": progress.as_dict(),
            "rows": progress.rows,
            "bytes": progress.bytes,
            "batches": progress.batches,
            "table_version": progress.version,
        }
    try:
        _update(svc, principal, run_id, **fields)
    except (Conflict, NotFound):
        logger.info("run %s had already ended", run_id)


def _run_public(run: SyncRun, sync: Sync) -> SyncRunPublic:
    duration = (run.finished_at - run.started_at).total_seconds() if run.finished_at else None
    return SyncRunPublic(
        run_id=run.id,
        sync_id=sync.id,
        status=run.status,
        source_table=sync.source_table,
        bronze_table=sync.target_table,
        mode=sync.mode,
        rows=run.rows,
        bytes=run.bytes,
        batches=run.batches,
        table_version=run.table_version,
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration_seconds=round(duration, 3) if duration is not None else None,
        error=run.error,
        progress=dict(run.progress or {}),
    )


def _message(exc: BaseException) -> str:
    return exc.message if isinstance(exc, TsunamiError) else f"internal error ({type(exc).__name__}); see the log"
