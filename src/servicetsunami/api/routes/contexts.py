"""Command execution contexts (the Command Execution API 1.2's model): a sandboxed kernel per
context, commands that keep its state, polled for a typed result, cancelled, and the context
destroyed. Contexts live on the worker that created them. On Databricks a context is an execution
context on a cluster (the body's ``cluster_id``, else the configured one)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from servicetsunami.api.deps import PrincipalDep, ServicesDep
from servicetsunami.api.schemas.common import COMMON_ERRORS, problem_responses
from servicetsunami.services.notebooks import contexts
from servicetsunami.services.notebooks.contexts import CommandPublic, ContextPublic

router = APIRouter(prefix="/contexts", tags=["contexts"])
RUN_ERRORS = {**COMMON_ERRORS, **problem_responses(503)}


class ContextCreate(BaseModel):
    language: Literal["python", "sql"] = "python"
    cluster_id: str | None = Field(None, max_length=100, description="Databricks: the cluster (default: configured)")
    start_cluster: bool = Field(False, description="Databricks: start the cluster if it is stopped")


class CommandCreate(BaseModel):
    command: str = Field(max_length=contexts.MAX_COMMAND_CHARS, description="Python, or SQL in a sql context")


@router.post("", operation_id="create_context", status_code=201, response_model=ContextPublic, responses=RUN_ERRORS)
async def create_context(body: ContextCreate, services: ServicesDep, principal: PrincipalDep) -> ContextPublic:
    """Start a context: a sandboxed kernel whose state persists between commands."""
    return await run_in_threadpool(
        lambda: contexts.create_context(
            services,
            principal,
            language=body.language,
            cluster_id=body.cluster_id,
            start_cluster=body.start_cluster,
        )
    )


@router.get("/{context_id}", operation_id="get_context", response_model=ContextPublic, responses=COMMON_ERRORS)
async def get_context(context_id: str, services: ServicesDep, principal: PrincipalDep) -> ContextPublic:
    """A context's status."""
    return await run_in_threadpool(contexts.context_status, services, principal, context_id)


@router.delete("/{context_id}", operation_id="destroy_context", status_code=204, responses=COMMON_ERRORS)
async def destroy_context(context_id: str, services: ServicesDep, principal: PrincipalDep) -> Response:
    """Stop the context's kernel."""
    await run_in_threadpool(contexts.destroy_context, services, principal, context_id)
    return Response(status_code=204)


@router.post(
    "/{context_id}/commands",
    operation_id="execute_command",
    status_code=202,
    response_model=CommandPublic,
    responses=COMMON_ERRORS,
)
async def execute_command(
    context_id: str, body: CommandCreate, services: ServicesDep, principal: PrincipalDep
) -> CommandPublic:
    """Queue a command; poll ``GET /contexts/{id}/commands/{command_id}``."""
    return await run_in_threadpool(contexts.execute_command, services, principal, context_id, body.command)


@router.get(
    "/{context_id}/commands/{command_id}",
    operation_id="get_command_status",
    response_model=CommandPublic,
    responses=COMMON_ERRORS,
)
async def get_command_status(
    context_id: str,
    command_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    wait_seconds: Annotated[float, Query(ge=0, le=60, description="Answer once it ends, or after this long")] = 0,
) -> CommandPublic:
    """Queued, Running, Finished, Error or Cancelled, with a text, table, image or error result."""
    return await run_in_threadpool(
        lambda: contexts.wait_command(services, principal, context_id, command_id, timeout=wait_seconds)
    )


@router.post(
    "/{context_id}/commands/{command_id}/cancel",
    operation_id="cancel_command",
    response_model=CommandPublic,
    responses=COMMON_ERRORS,
)
async def cancel_command(
    context_id: str, command_id: str, services: ServicesDep, principal: PrincipalDep
) -> CommandPublic:
    """Cancel a queued or running command (the kernel is interrupted; its state stays)."""
    return await run_in_threadpool(contexts.cancel_command, services, principal, context_id, command_id)
