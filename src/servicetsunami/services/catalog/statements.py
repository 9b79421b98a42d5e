"""Long statements, in the shapes of the Databricks Statement Execution API: submit with a wait, then
poll, fetch the result in chunks, or cancel, by statement id.

A statement is a run of kind ``statement`` (DESIGN.md section 9): its id is the run's id, it is owned
by the caller's tenant (another tenant's id is ``not_found``), and a worker of any process executes it
through :func:`~servicetsunami.services.catalog.query.query_sql`, so the guard, the row and byte caps,
the timeout and PII masking are those of ``query_sql``. Cancelling stops the statement where it
runs: DuckDB's statement is interrupted on the local engine, and on Databricks the warehouse's
statement is canceled through the Statement Execution API (both through
:func:`~servicetsunami.engines.base.stoppable`).

States are the API's: ``PENDING`` (queued), ``RUNNING``, ``SUCCEEDED``, ``FAILED`` (an error or the
timeout), ``CANCELED`` and ``CLOSED``: a result is kept ``statements.keep_seconds`` after the statement
ends, then removed (a ticker clears it in the store; a read past that time already says CLOSED).
The result is cut into chunks of ``statements.chunk_rows`` rows; values are JSON (numbers stay
numbers, unlike the API's strings).
"""

from __future__ import annotations

import logging
import math
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from servicetsunami.engines.base import stoppable
from servicetsunami.errors import Conflict, InvalidInput, NotFound
from servicetsunami.services.catalog import query
from servicetsunami.services.models import QueryColumn
from servicetsunami.services.runs import service as runs
from servicetsunami.services.runs.kinds import RunKind, register
from servicetsunami.services.runs.stops import Stops
from servicetsunami.sql import guard_query
from servicetsunami.store.models import Run, utcnow
from servicetsunami.store.repositories import runs as runs_repo
from servicetsunami.tenancy import Principal, Scope

if TYPE_CHECKING:
    from servicetsunami.services.container import Services
    from servicetsunami.services.runs.context import RunContext

logger = logging.getLogger(__name__)

KIND = "statement"
MAX_SQL_CHARS = 100_000
StatementState = Literal["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED", "CLOSED"]
_STATES: dict[str, StatementState] = {
    "queued": "PENDING",
    "running": "RUNNING",
    "succeeded": "SUCCEEDED",
    "failed": "FAILED",
    "timed_out": "FAILED",
    "skipped": "CANCELED",
    "canceled": "CANCELED",
}


class StatementError(BaseModel):
    error_code: str = Field(description="Our stable error code, e.g. query_refused, query_timeout")
    message: str


class StatementStatus(BaseModel):
    state: StatementState
    error: StatementError | None = None


class ChunkInfo(BaseModel):
    chunk_index: int
    row_offset: int
    row_count: int


class ResultSchema(BaseModel):
    column_count: int
    columns: list[QueryColumn]


class ResultManifest(BaseModel):
    format: str = "JSON_ARRAY"
    schema_: ResultSchema = Field(alias="schema", serialization_alias="schema")
    total_row_count: int
    total_chunk_count: int
    chunks: list[ChunkInfo]
    truncated: bool = Field(description="Cut at the row or byte cap (see hint)")
    hint: str | None = None

    model_config = {"populate_by_name": True, "serialize_by_alias": True}


class ResultChunk(BaseModel):
    chunk_index: int
    row_offset: int
    row_count: int
    data_array: list[list[Any]]
    next_chunk_index: int | None = None


class StatementPublic(BaseModel):
    """A statement as ``GET /statements/{id}`` shows it; ``result`` is its first chunk once it succeeded."""

    statement_id: str
    status: StatementStatus
    manifest: ResultManifest | None = None
    result: ResultChunk | None = None
    hint: str | None = None


# -- the doors call these ----------------------------------------------------------------------------


def execute_statement(
    svc: Services, principal: Principal, sql: str, /, *, wait_seconds: float = 10, max_rows: int | None = None
) -> StatementPublic:
    """Submit one read-only statement and wait up to ``wait_seconds`` (at most
    ``statements.max_wait_seconds``): the result when it ends in time, else its id to poll."""
    principal.require(Scope.READ)
    if not isinstance(sql, str) or not sql.strip() or len(sql) > MAX_SQL_CHARS:
        raise InvalidInput(f"sql must be a statement of at most {MAX_SQL_CHARS:,} characters")
    if max_rows is not None and (not isinstance(max_rows, int) or max_rows < 1):
        raise InvalidInput("max_rows must be a positive integer")
    if not 0 <= wait_seconds <= svc.settings.statements.max_wait_seconds:
        raise InvalidInput(f"wait_seconds must be between 0 and {svc.settings.statements.max_wait_seconds}")
    guard_query(sql, catalog=principal.catalog)  # refused now, not after a queue
    run_id = runs.submit(
        svc,
        principal,
        KIND,
        params={"sql": sql, "max_rows": max_rows},
        # The engine stops the statement at query.timeout_seconds; the launcher's limit is the backstop.
        timeout_seconds=svc.settings.query.timeout_seconds + 30,
    )
    if wait_seconds > 0:
        runs.wait_for_run(svc, principal, run_id, timeout=wait_seconds, poll_seconds=0.05)
    return get_statement(svc, principal, run_id)


def get_statement(svc: Services, principal: Principal, statement_id: str, /) -> StatementPublic:
    """The statement's state; with its manifest and first chunk once it succeeded."""
    principal.require(Scope.READ)
    run = _statement_run(svc, principal, statement_id)
    status = _status(svc, run)
    public = StatementPublic(statement_id=run.id, status=status)
    if status.state == "SUCCEEDED":
        assert run.result is not None
        public.manifest = _manifest(svc, run.result)
        public.result = _chunk(svc, run.result, 0)
    elif status.state in ("PENDING", "RUNNING"):
        public.hint = f"still {status.state}; poll get_statement('{run.id}') or cancel_statement('{run.id}')"
    elif status.state == "CLOSED":
        public.hint = f"the result was removed {svc.settings.statements.keep_seconds:g} s after the statement ended"
    return public


def get_statement_chunk(svc: Services, principal: Principal, statement_id: str, chunk_index: int, /) -> ResultChunk:
    """Chunk ``chunk_index`` of a succeeded statement's result (``next_chunk_index`` links them)."""
    principal.require(Scope.READ)
    run = _statement_run(svc, principal, statement_id)
    state = _status(svc, run).state
    if state != "SUCCEEDED":
        raise Conflict(f"statement {statement_id} has no result to read: it is {state}")
    assert run.result is not None
    return _chunk(svc, run.result, chunk_index)


def cancel_statement(svc: Services, principal: Principal, statement_id: str, /) -> StatementPublic:
    """Stop a statement of the caller's tenant (a statement already ended stays as it ended)."""
    principal.require(Scope.READ)  # whoever may run a statement may stop it
    with svc.store.session(write_lock=True) as session:
        run = runs_repo.get_run(session, statement_id, tenant_id=principal.tenant_id)
        if run.kind != KIND:
            raise NotFound(f"statement {statement_id} does not exist")
        if not run.finished:
            runs_repo.request_cancel(session, statement_id, tenant_id=principal.tenant_id)
    local = svc.launcher.local_run(statement_id)
    if local is not None:  # running here: stop it now rather than at the next beat
        local.request_cancel("canceled")
    runs.wait_for_run(svc, principal, statement_id, timeout=10.0, poll_seconds=0.05)
    return get_statement(svc, principal, statement_id)


# -- the run kind ------------------------------------------------------------------------------------


def _execute(svc: Services, ctx: RunContext) -> dict[str, Any]:
    params = ctx.params
    stops = Stops()
    ctx.on_cancel(stops.stop_all)
    ctx.raise_if_cancelled()
    with stoppable(stops.add):
        result = query.query_sql(svc, ctx.principal, str(params["sql"]), max_rows=params.get("max_rows"))
    ctx.raise_if_cancelled()
    return {
        "columns": [c.model_dump() for c in result.columns],
        "rows": result.rows,
        "truncated": result.truncated,
        "hint": result.hint,
        "sql": result.sql,
    }


def _forget_old_results(svc: Services) -> None:
    before = utcnow() - timedelta(seconds=svc.settings.statements.keep_seconds)
    with svc.store.session() as session:
        cleared = runs_repo.clear_results(session, kind=KIND, finished_before=before)
    if cleared:
        logger.info("removed the results of %d statements", cleared)


register(
    RunKind(
        KIND,
        _execute,
        ticker=_forget_old_results,
        ticker_seconds=lambda settings: min(60.0, settings.statements.keep_seconds),
    )
)


# -- internals ---------------------------------------------------------------------------------------


def _statement_run(svc: Services, principal: Principal, statement_id: str) -> Run:
    with svc.store.session() as session:
        run = runs_repo.get_run(session, statement_id, tenant_id=principal.tenant_id)
        if run.kind != KIND:
            raise NotFound(f"statement {statement_id} does not exist")
        session.expunge(run)
    return run


def _status(svc: Services, run: Run) -> StatementStatus:
    state = _STATES.get(run.state, "FAILED")
    if run.finished_at is not None:
        expired = utcnow() - run.finished_at > timedelta(seconds=svc.settings.statements.keep_seconds)
        if state == "SUCCEEDED" and (expired or run.result is None):
            return StatementStatus(state="CLOSED")
    error = None
    if state == "FAILED":
        code = run.error_code or ("query_timeout" if run.state == "timed_out" else "error")
        error = StatementError(error_code=code, message=run.error or "the statement failed")
    return StatementStatus(state=state, error=error)


def _manifest(svc: Services, result: dict[str, Any]) -> ResultManifest:
    rows = len(result.get("rows") or [])
    size = svc.settings.statements.chunk_rows
    count = max(1, math.ceil(rows / size))
    columns = [QueryColumn.model_validate(c) for c in result.get("columns") or []]
    return ResultManifest(
        schema_=ResultSchema(column_count=len(columns), columns=columns),
        total_row_count=rows,
        total_chunk_count=count,
        chunks=[
            ChunkInfo(chunk_index=i, row_offset=i * size, row_count=min(size, rows - i * size)) for i in range(count)
        ],
        truncated=bool(result.get("truncated")),
        hint=result.get("hint"),
    )


def _chunk(svc: Services, result: dict[str, Any], index: int) -> ResultChunk:
    rows: list[list[Any]] = result.get("rows") or []
    size = svc.settings.statements.chunk_rows
    count = max(1, math.ceil(len(rows) / size))
    if not 0 <= index < count:
        raise NotFound(f"chunk {index} does not exist: the result has chunks 0 to {count - 1}")
    data = rows[index * size : (index + 1) * size]
    return ResultChunk(
        chunk_index=index,
        row_offset=index * size,
        row_count=len(data),
        data_array=data,
        next_chunk_index=index + 1 if index + 1 < count else None,
    )
