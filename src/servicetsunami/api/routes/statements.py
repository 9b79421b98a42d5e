"""Long statements in the shapes of the Databricks Statement Execution API (``/api/2.0/sql/statements``):
submit with ``wait_timeout``, poll ``GET /statements/{id}``, read ``/result/chunks/{n}``, cancel.

The statement runs on the caller's own catalog (no ``warehouse_id`` to choose: the server's engine
runs it), through the same guard, caps and masking as ``POST /query``, and counts against the same
per-principal query limit.
"""

from __future__ import annotations

import re
from typing import Literal

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, field_validator

from servicetsunami.api.deps import PrincipalDep, QueryPrincipalDep, ServicesDep
from servicetsunami.api.schemas.common import COMMON_ERRORS
from servicetsunami.services.catalog import statements
from servicetsunami.services.catalog.statements import ResultChunk, StatementPublic

router = APIRouter(prefix="/statements", tags=["statements"])

_WAIT = re.compile(r"^(\d{1,2})s$")


class StatementCreate(BaseModel):
    statement: str = Field(min_length=1, max_length=statements.MAX_SQL_CHARS, description="One read-only statement")
    wait_timeout: str = Field("10s", description="'0s', or '5s' to '50s': how long to wait for the result")
    on_wait_timeout: Literal["CONTINUE", "CANCEL"] = Field(
        "CONTINUE", description="Past the wait: keep running (poll by id) or cancel"
    )
    row_limit: int | None = Field(None, ge=1, description="At most this many rows (never above the server's cap)")
    warehouse_id: str | None = Field(None, max_length=64, description="Accepted for compatibility; not used")

    @field_validator("wait_timeout")
    @classmethod
    def _check_wait(cls, value: str) -> str:
        match = _WAIT.fullmatch(value)
        if match is None or not (int(match.group(1)) == 0 or 5 <= int(match.group(1)) <= 50):
            raise ValueError("wait_timeout must be '0s' or between '5s' and '50s'")
        return value


@router.post("", operation_id="execute_statement", response_model=StatementPublic, responses=COMMON_ERRORS)
async def execute_statement(
    body: StatementCreate, services: ServicesDep, principal: QueryPrincipalDep
) -> StatementPublic:
    """Submit a statement; the answer holds the result when it ended within `wait_timeout`."""
    wait = int(body.wait_timeout[:-1])
    public = await run_in_threadpool(
        lambda: statements.execute_statement(
            services, principal, body.statement, wait_seconds=wait, max_rows=body.row_limit
        )
    )
    if body.on_wait_timeout == "CANCEL" and public.status.state in ("PENDING", "RUNNING"):
        public = await run_in_threadpool(statements.cancel_statement, services, principal, public.statement_id)
    return public


@router.get("/{statement_id}", operation_id="get_statement", response_model=StatementPublic, responses=COMMON_ERRORS)
async def get_statement(statement_id: str, services: ServicesDep, principal: PrincipalDep) -> StatementPublic:
    """The statement's state; its manifest and first chunk once it SUCCEEDED."""
    return await run_in_threadpool(statements.get_statement, services, principal, statement_id)


@router.get(
    "/{statement_id}/result/chunks/{chunk_index}",
    operation_id="get_statement_result_chunk",
    response_model=ResultChunk,
    responses=COMMON_ERRORS,
)
async def get_statement_result_chunk(
    statement_id: str, chunk_index: int, services: ServicesDep, principal: PrincipalDep
) -> ResultChunk:
    """One chunk of a SUCCEEDED statement's result (`next_chunk_index` names the next)."""
    return await run_in_threadpool(statements.get_statement_chunk, services, principal, statement_id, chunk_index)


@router.post(
    "/{statement_id}/cancel", operation_id="cancel_statement", response_model=StatementPublic, responses=COMMON_ERRORS
)
async def cancel_statement(statement_id: str, services: ServicesDep, principal: PrincipalDep) -> StatementPublic:
    """Stop a running statement; a statement that ended is left as it ended."""
    return await run_in_threadpool(statements.cancel_statement, services, principal, statement_id)
