"""The tools a principal sees, as ``tools/list`` would answer them, for the REST door and the CLI
(``GET /api/v1/mcp/tools``, ``tsunami tools list``): the same server, middlewares included, built
for that principal."""

from __future__ import annotations

from typing import Any

from servicetsunami.mcp.server import build_mcp_server
from servicetsunami.services.container import Services
from servicetsunami.tenancy import Principal


async def visible_tools(services: Services, principal: Principal, /) -> list[dict[str, Any]]:
    """Each tool as its MCP ``Tool`` object (name, description, inputSchema, outputSchema, annotations)."""
    server = build_mcp_server(services, principal=principal)
    tools = await server.list_tools()
    return [tool.to_mcp_tool().model_dump(mode="json", by_alias=True, exclude_none=True) for tool in tools]
