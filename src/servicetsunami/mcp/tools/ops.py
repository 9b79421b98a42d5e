"""``status`` (the service as configured and as it answers: admins) and ``metrics`` (the caller's
own tenant's runs, now and over the last hours)."""

from __future__ import annotations

from typing import Annotated

from fastmcp import FastMCP
from fastmcp.tools.base import ToolResult
from mcp.types import ToolAnnotations
from pydantic import Field

from servicetsunami.mcp.auth import Caller
from servicetsunami.mcp.errors import call_service
from servicetsunami.mcp.results import output_schema, tool_result
from servicetsunami.services.container import Services
from servicetsunami.services.ops import status as status_service


def register(server: FastMCP, services: Services, caller: Caller) -> None:
    @server.tool(
        tags={"manage"},
        annotations=ToolAnnotations(title="Service status", read_only_hint=True, open_world_hint=False),
        output_schema=output_schema(status_service.ServiceStatus),
    )
    async def status() -> ToolResult:
        """Version, uptime, engine, store, what is configured (never secrets), each dependency's check,
        and the runs queued or running now."""
        caller.principal()
        return tool_result(await call_service(status_service.service_status, services))

    @server.tool(
        tags={"read"},
        annotations=ToolAnnotations(title="Your tenant's metrics", read_only_hint=True, open_world_hint=False),
        output_schema=output_schema(status_service.TenantMetrics),
    )
    async def metrics(
        hours: Annotated[float, Field(gt=0, le=24 * 31, description="Window for finished runs")] = 24,
    ) -> ToolResult:
        """Your tenant's runs: queued and running now, and those finished in the window by kind and
        state with their mean and longest durations."""
        principal = caller.principal()
        return tool_result(await call_service(status_service.tenant_metrics, services, principal, hours=hours))
