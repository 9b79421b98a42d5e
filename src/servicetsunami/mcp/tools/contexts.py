"""Command execution context tools (Databricks' Command Execution API 1.2): ``create_context``,
``execute_command``, ``get_command_status``, ``cancel_command``, ``destroy_context``. A context is
a sandboxed kernel whose state persists between commands, or on Databricks an execution context on
a cluster."""

from __future__ import annotations

from typing import Annotated, Literal

from fastmcp import FastMCP
from fastmcp.tools.base import ToolResult
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from servicetsunami.mcp.auth import Caller
from servicetsunami.mcp.errors import call_service
from servicetsunami.mcp.results import output_schema, tool_result
from servicetsunami.services.container import Services
from servicetsunami.services.notebooks import contexts
from servicetsunami.services.notebooks.contexts import CommandPublic, ContextPublic

_READ = ToolAnnotations(title="Command status", read_only_hint=True, open_world_hint=False)
_RUN = ToolAnnotations(
    title="Execute code", read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False
)
MAX_WAIT_SECONDS = 60.0
ContextId = Annotated[str, Field(description="The id create_context returned")]
CommandId = Annotated[str, Field(description="The id execute_command returned")]


class Destroyed(BaseModel):
    id: str
    destroyed: bool = True


def register(server: FastMCP, services: Services, caller: Caller) -> None:
    @server.tool(tags={"write"}, annotations=_RUN, output_schema=output_schema(ContextPublic))
    async def create_context(
        language: Literal["python", "sql"] = "python",
        cluster_id: Annotated[
            str | None, Field(description="Databricks: the cluster (default: the configured one)")
        ] = None,
        start_cluster: Annotated[bool, Field(description="Databricks: start the cluster if it is stopped")] = False,
    ) -> ToolResult:
        """Start an execution context (state persists between commands)."""
        return tool_result(
            await call_service(
                contexts.create_context,
                services,
                caller.principal(),
                language=language,
                cluster_id=cluster_id,
                start_cluster=start_cluster,
            )
        )

    @server.tool(tags={"write"}, annotations=_RUN, output_schema=output_schema(CommandPublic))
    async def execute_command(
        context_id: ContextId,
        command: Annotated[str, Field(description="Python (or SQL in a sql context); spark, dbutils, display work")],
        wait_seconds: Annotated[
            float, Field(ge=0, le=MAX_WAIT_SECONDS, description="Wait for the result at most this long")
        ] = 10,
    ) -> ToolResult:
        """Run a command in a context; answers with its id and, if it ended within the wait, its result."""
        principal = caller.principal()
        queued = await call_service(contexts.execute_command, services, principal, context_id, command)
        if wait_seconds <= 0:
            return tool_result(queued)
        return tool_result(
            await call_service(contexts.wait_command, services, principal, context_id, queued.id, timeout=wait_seconds)
        )

    @server.tool(tags={"read"}, annotations=_READ, output_schema=output_schema(CommandPublic))
    async def get_command_status(context_id: ContextId, command_id: CommandId) -> ToolResult:
        """Queued, Running, Finished, Error or Cancelled, with a text, table, image or error result."""
        return tool_result(
            await call_service(contexts.get_command_status, services, caller.principal(), context_id, command_id)
        )

    @server.tool(tags={"write"}, annotations=_RUN, output_schema=output_schema(CommandPublic))
    async def cancel_command(context_id: ContextId, command_id: CommandId) -> ToolResult:
        """Cancel a queued or running command (the kernel is interrupted; its state stays)."""
        return tool_result(
            await call_service(contexts.cancel_command, services, caller.principal(), context_id, command_id)
        )

    @server.tool(tags={"write"}, annotations=_RUN, output_schema=output_schema(Destroyed))
    async def destroy_context(context_id: ContextId) -> ToolResult:
        """Stop a context's kernel and forget its state."""
        await call_service(contexts.destroy_context, services, caller.principal(), context_id)
        return tool_result(Destroyed(id=context_id))
