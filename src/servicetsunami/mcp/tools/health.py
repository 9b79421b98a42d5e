"""``health``: is the service, its store and its lakehouse engine working."""

from __future__ import annotations

from fastmcp import FastMCP
from fastmcp.tools.base import ToolResult
from mcp.types import ToolAnnotations

from servicetsunami.mcp.auth import Caller
from servicetsunami.mcp.errors import call_service
from servicetsunami.mcp.results import output_schema, tool_result
from servicetsunami.services.container import Services
from servicetsunami.services.models import HealthReport
from servicetsunami.services.ops import health as health_service


def register(server: FastMCP, services: Services, caller: Caller) -> None:
    @server.tool(
        tags={"read"},
        annotations=ToolAnnotations(title="Service health", read_only_hint=True, open_world_hint=False),
        output_schema=output_schema(HealthReport),
    )
    async def health() -> ToolResult:
        """Check the service: version, engine, and whether the system store and lakehouse respond."""
        caller.principal()  # authenticated callers only, like every other tool
        return tool_result(await call_service(health_service.health, services))
