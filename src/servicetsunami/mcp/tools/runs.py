"""``get_run``, ``list_runs``, ``cancel_run``: everything that takes time (syncs, mirror replays, ...),
followed and stopped through one set of tools. ``get_run(wait_seconds=...)`` waits with progress
notifications, like the tool that started the run."""

from __future__ import annotations

from typing import Annotated

from fastmcp import FastMCP
from fastmcp.server.context import Context
from fastmcp.tools.base import ToolResult
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from servicetsunami.mcp.auth import Caller
from servicetsunami.mcp.errors import call_service
from servicetsunami.mcp.results import output_schema, tool_result
from servicetsunami.services.container import Services
from servicetsunami.services.runs import service as runs
from servicetsunami.services.runs.model import RunPublic

_READ = ToolAnnotations(title="Runs", read_only_hint=True, open_world_hint=False)
_CANCEL = ToolAnnotations(
    title="Cancel a run", read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
MAX_WAIT_SECONDS = 60.0
RunId = Annotated[str, Field(description="A run id, as a tool that started something long returned it")]


class RunList(BaseModel):
    runs: list[RunPublic]


def register(server: FastMCP, services: Services, caller: Caller) -> None:
    @server.tool(tags={"read"}, annotations=_READ, output_schema=output_schema(RunPublic))
    async def get_run(
        run_id: RunId,
        ctx: Context,
        wait_seconds: Annotated[
            float, Field(ge=0, le=MAX_WAIT_SECONDS, description="Wait (with progress) until it ends, at most this")
        ] = 0,
    ) -> ToolResult:
        """State, progress, result or error of a run (a sync, a mirror replay, ...)."""
        principal = caller.principal()
        if wait_seconds <= 0:
            return tool_result(await call_service(runs.get_run, services, principal, run_id))

        async def report(run: RunPublic) -> None:
            p = run.progress
            await ctx.report_progress(float(p.done or 0), p.total, p.message or run.state)

        return tool_result(await runs.await_run(services, principal, run_id, timeout=wait_seconds, on_progress=report))

    @server.tool(tags={"read"}, annotations=_READ, output_schema=output_schema(RunList))
    async def list_runs(
        kind: Annotated[str | None, Field(description="Only this kind: sync, ...")] = None,
        state: Annotated[str | None, Field(description="queued, running, succeeded, failed, canceled, ...")] = None,
        limit: Annotated[int, Field(ge=1, le=200)] = 50,
    ) -> ToolResult:
        """Your runs, newest first."""
        found = await call_service(runs.list_runs, services, caller.principal(), kind=kind, state=state, limit=limit)
        return tool_result(RunList(runs=found[:limit]))  # the service adds the next page's first run

    @server.tool(tags={"write"}, annotations=_CANCEL, output_schema=output_schema(RunPublic))
    async def cancel_run(run_id: RunId) -> ToolResult:
        """Stop a queued or running run; answers once it has stopped."""
        return tool_result(await call_service(runs.cancel_run, services, caller.principal(), run_id))
