"""Tool sets: the server's (settings ``tools.*``) and an API key's own narrow ``tools/list``, and a
call to a hidden tool is refused with ``tool_not_enabled``, over stdio-like and HTTP clients."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from servicetsunami.errors import InvalidInput
from servicetsunami.mcp.server import build_mcp_server
from servicetsunami.services.container import Services
from servicetsunami.services.identity import tenants
from servicetsunami.settings import Settings, ToolsSettings
from servicetsunami.toolsets import PRESETS, TOOLS, ToolSet
from tests.helpers import make_principal
from tests.integration.mcp.support import SALES_CSV, b64, error_code, local_client, running_http_server


async def _names(client: Client[Any]) -> set[str]:
    return {tool.name for tool in await client.list_tools()}


async def test_the_tool_catalog_names_exactly_the_tools_the_server_registers(services: Services) -> None:
    admin = make_principal(services, "acme", "admin")[0]
    async with Client(build_mcp_server(services, principal=admin)) as client:
        assert await _names(client) == set(TOOLS)


async def test_each_preset_lists_only_its_tools(tmp_path: Path) -> None:
    sizes = {}
    for preset in PRESETS:
        settings = Settings(home=tmp_path / preset, tools=ToolsSettings(preset=preset), _env_file=None)  # type: ignore[call-arg]  # pydantic-settings option
        services = Services.open(settings)
        try:
            admin = make_principal(services, "acme", "admin")[0]
            async with Client(build_mcp_server(services, principal=admin)) as client:
                names = await _names(client)
                sizes[preset] = len(names)
        finally:
            services.close()
        members = PRESETS[preset]
        assert names == (set(TOOLS) if members is None else set(members))
    assert sizes["minimal"] < sizes["analyst"] < sizes["engineer"] < sizes["admin"]


async def test_a_disabled_tool_is_hidden_and_its_call_refused(tmp_path: Path) -> None:
    tools = ToolsSettings(preset="analyst", enabled=["upload_file"], disabled=["query_sql"])
    settings = Settings(home=tmp_path / "home", tools=tools, _env_file=None)  # type: ignore[call-arg]  # pydantic-settings option
    services = Services.open(settings)
    try:
        _, key = make_principal(services, "acme", "engineer")
        async with local_client(services, key) as client:
            names = await _names(client)
            refused = await client.call_tool_mcp("query_sql", {"sql": "SELECT 1"})
            uploaded = await client.call_tool_mcp(
                "upload_file", {"file_name": "s.csv", "dataset_name": "s", "file_content": b64(SALES_CSV)}
            )
    finally:
        services.close()
    assert "query_sql" not in names and {"upload_file", "list_tables"} <= names and "create_job" not in names
    assert error_code(refused) == "tool_not_enabled"
    assert not uploaded.is_error


def test_an_unknown_tool_in_the_settings_is_refused_when_the_server_is_built(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", tools=ToolsSettings(disabled=["query_sq"]), _env_file=None)  # type: ignore[call-arg]  # pydantic-settings option
    services = Services.open(settings)
    try:
        admin = make_principal(services, "acme", "admin")[0]
        with pytest.raises(InvalidInput, match="query_sql"):
            build_mcp_server(services, principal=admin)
    finally:
        services.close()


async def test_a_key_with_a_preset_sees_only_that_preset_within_its_role(services: Services) -> None:
    tenants.create_tenant(services.store, "acme")
    analyst_key = tenants.create_api_key(
        services.store, tenant_slug="acme", name="bi", role="engineer", tool_preset="minimal", tools=["get_run"]
    )
    async with local_client(services, analyst_key.plaintext) as client:
        names = await _names(client)
        refused = await client.call_tool_mcp("list_runs", {})
        allowed = await client.call_tool_mcp("list_tables", {})
    assert names == set(PRESETS["minimal"] or ()) | {"get_run"}
    assert error_code(refused) == "tool_not_enabled"
    assert not allowed.is_error
    assert analyst_key.tool_preset == "minimal" and analyst_key.tools == ["get_run"]


async def test_a_key_tool_set_never_widens_its_role(services: Services) -> None:
    tenants.create_tenant(services.store, "acme")
    key = tenants.create_api_key(services.store, tenant_slug="acme", name="x", role="analyst", tools=["upload_file"])
    async with local_client(services, key.plaintext) as client:
        assert await _names(client) == set()
        refused = await client.call_tool_mcp(
            "upload_file", {"file_name": "s.csv", "dataset_name": "s", "file_content": b64(SALES_CSV)}
        )
    assert error_code(refused) == "permission_denied"


async def test_a_key_tool_set_holds_over_http(services: Services) -> None:
    tenants.create_tenant(services.store, "acme")
    key = tenants.create_api_key(services.store, tenant_slug="acme", name="bi", role="admin", tool_preset="analyst")
    with running_http_server(services) as server:
        async with Client(StreamableHttpTransport(server.mcp_url, auth=key.plaintext)) as client:
            names = await _names(client)
            refused = await client.call_tool_mcp("create_job", {"name": "j", "tasks": []})
    assert names == set(PRESETS["analyst"] or ())
    assert error_code(refused) == "tool_not_enabled"


def test_an_unknown_tool_or_preset_on_a_key_is_refused(services: Services) -> None:
    tenants.create_tenant(services.store, "acme")
    with pytest.raises(InvalidInput, match="query_sql"):
        tenants.create_api_key(services.store, tenant_slug="acme", name="x", role="analyst", tools=["query_sq1"])
    with pytest.raises(InvalidInput, match="minimal"):
        tenants.create_api_key(services.store, tenant_slug="acme", name="x", role="analyst", tool_preset="tiny")


def test_a_stored_tool_set_drops_names_a_later_release_removed() -> None:
    stored = {"preset": "gone", "enabled": ["query_sql", "retired_tool"], "disabled": []}
    restored = ToolSet.from_json(stored)
    assert restored == ToolSet(enabled=frozenset({"query_sql"}))
    assert restored is not None and restored.allows("query_sql") and not restored.allows("list_tables")
    assert ToolSet.from_json(None) is None
