"""Each build of the MCP server speaks for its own service container and caller, though every build
after the first reuses the tools the first made from the same code (mcp/server.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastmcp import Client, FastMCP

from servicetsunami.mcp import server as mcp_server
from servicetsunami.mcp.server import build_mcp_server
from servicetsunami.services.container import Services
from servicetsunami.settings import Settings
from servicetsunami.tenancy import Principal
from tests.helpers import make_principal
from tests.integration.mcp.support import upload_sales


async def _tools(server: FastMCP) -> list[dict[str, Any]]:
    async with Client(server) as client:
        return [tool.model_dump() for tool in await client.list_tools()]


async def test_a_rebuilt_server_lists_the_same_tools_as_one_built_from_scratch(
    services: Services, acme: Principal, monkeypatch: Any
) -> None:
    first = await _tools(build_mcp_server(services, principal=acme))
    again = await _tools(build_mcp_server(services, principal=acme))
    monkeypatch.setattr(mcp_server, "_Server", FastMCP)  # fastmcp's own decorator, nothing reused
    scratch = await _tools(build_mcp_server(services, principal=acme))
    assert len(first) > 50
    assert first == again == scratch


async def test_servers_built_one_after_another_each_answer_from_their_own_services(
    tmp_path: Path, services: Services, acme: Principal
) -> None:
    other = Services.open(Settings(home=tmp_path / "other", _env_file=None))  # type: ignore[call-arg]
    try:
        stranger = make_principal(other, "acme")[0]
        async with Client(build_mcp_server(services, principal=acme)) as client:
            await upload_sales(client)
        async with Client(build_mcp_server(other, principal=stranger)) as client:
            theirs = (await client.call_tool("list_tables", {})).structured_content
        async with Client(build_mcp_server(services, principal=acme)) as client:
            ours = (await client.call_tool("list_tables", {})).structured_content
    finally:
        other.close()
    assert theirs == {"tables": []}
    assert ours is not None and [t["full_name"] for t in ours["tables"]] == ["tenant_acme.bronze.sales"]
