"""Per-tool (MCP) and per-route (REST) rate limits from the settings ``rate_limits.*``: counted per
principal, shared by every server over the same data folder (each worker opens its own limiter on
the shared file), refused with ``rate_limited`` and the seconds to wait."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from servicetsunami.api.app import create_app
from servicetsunami.mcp.errors import ERROR_META_KEY
from servicetsunami.mcp.server import build_mcp_server
from servicetsunami.security.ratelimits import open_rate_limiter
from servicetsunami.services.container import Services
from servicetsunami.settings import RateLimitsSettings, Settings
from tests.helpers import make_principal
from tests.integration.mcp.support import error_code, running_http_server


def _settings(tmp_path: Path, **limits: Any) -> Settings:
    return Settings(home=tmp_path / "home", rate_limits=RateLimitsSettings(**limits), _env_file=None)  # type: ignore[call-arg]  # pydantic-settings option


async def test_a_tool_limit_refuses_the_call_past_it_with_retry_after_for_that_caller_only(tmp_path: Path) -> None:
    services = Services.open(_settings(tmp_path, tools={"list_tables": "2/minute"}))
    limiter = open_rate_limiter(services.settings)
    try:
        acme = make_principal(services, "acme", "analyst")[0]
        globex = make_principal(services, "globex", "analyst")[0]
        async with Client(build_mcp_server(services, principal=acme, limiter=limiter)) as client:
            passed = [await client.call_tool_mcp("list_tables", {}) for _ in range(2)]
            refused = await client.call_tool_mcp("list_tables", {})
            other_tool = await client.call_tool_mcp("health", {})
        async with Client(build_mcp_server(services, principal=globex, limiter=limiter)) as client:
            other_caller = await client.call_tool_mcp("list_tables", {})
    finally:
        limiter.close()
        services.close()
    assert not any(result.is_error for result in passed)
    assert error_code(refused) == "rate_limited"
    assert refused.meta is not None and 1 <= refused.meta[ERROR_META_KEY]["details"]["retry_after"] <= 60
    assert not other_tool.is_error and not other_caller.is_error


async def test_the_default_limit_counts_each_tool_apart(tmp_path: Path) -> None:
    services = Services.open(_settings(tmp_path, default="1/minute", tools={"health": "5/minute"}))
    limiter = open_rate_limiter(services.settings)
    try:
        acme = make_principal(services, "acme", "analyst")[0]
        async with Client(build_mcp_server(services, principal=acme, limiter=limiter)) as client:
            first_tables = await client.call_tool_mcp("list_tables", {})
            first_runs = await client.call_tool_mcp("list_runs", {})
            second_tables = await client.call_tool_mcp("list_tables", {})
            healths = [await client.call_tool_mcp("health", {}) for _ in range(3)]
    finally:
        limiter.close()
        services.close()
    assert not first_tables.is_error and not first_runs.is_error
    assert error_code(second_tables) == "rate_limited"
    assert not any(result.is_error for result in healths)


async def test_a_tool_limit_is_one_allowance_across_servers_on_the_same_data_folder(tmp_path: Path) -> None:
    services = Services.open(_settings(tmp_path, tools={"list_tables": "3/minute"}))
    local_limiter = open_rate_limiter(services.settings)  # as `tsunami mcp` opens its own
    try:
        acme, key = make_principal(services, "acme", "analyst")
        with running_http_server(services) as server:
            async with Client(StreamableHttpTransport(server.mcp_url, auth=key)) as remote:
                over_http = [await remote.call_tool_mcp("list_tables", {}) for _ in range(2)]
            async with Client(build_mcp_server(services, principal=acme, limiter=local_limiter)) as local:
                third = await local.call_tool_mcp("list_tables", {})
                fourth = await local.call_tool_mcp("list_tables", {})
    finally:
        local_limiter.close()
        services.close()
    assert not any(result.is_error for result in [*over_http, third])
    assert error_code(fourth) == "rate_limited"


def test_a_route_limit_answers_429_with_retry_after_per_principal(tmp_path: Path) -> None:
    routes = {"GET /api/v1/runs": "2/minute", "get_run": "1/minute", "/api/v1/health": "1/minute"}
    services = Services.open(_settings(tmp_path, routes=routes))
    try:
        _, acme_key = make_principal(services, "acme", "analyst")
        _, globex_key = make_principal(services, "globex", "analyst")
        acme = {"Authorization": f"Bearer {acme_key}"}
        with TestClient(create_app(services.settings, services=services)) as client:
            statuses = [client.get("/api/v1/runs", headers=acme).status_code for _ in range(2)]
            refused = client.get("/api/v1/runs", headers=acme)
            other = client.get("/api/v1/runs", headers={"Authorization": f"Bearer {globex_key}"})
            tables = client.get("/api/v1/tables", headers=acme)
            by_operation = [client.get("/api/v1/runs/nope", headers=acme).status_code for _ in range(2)]
            anonymous = [client.get("/api/v1/health").status_code for _ in range(2)]
    finally:
        services.close()
    assert statuses == [200, 200]
    assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert other.status_code == 200 and tables.status_code == 200
    assert by_operation == [404, 429]
    assert anonymous == [200, 429]
