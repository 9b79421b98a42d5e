"""The operator's surface: the status and metrics tools, /health/detailed, /api/v1/status, the MCP
server as REST sees it, CORS by setting, and JSON request lines."""

from __future__ import annotations

import io
import json
import logging

import httpx
import pytest
from fastmcp import Client

from servicetsunami import logs
from servicetsunami.api.app import create_app
from servicetsunami.mcp.server import build_mcp_server
from servicetsunami.services.container import Services
from servicetsunami.services.runs import service as runs
from servicetsunami.settings import CorsSettings
from tests.helpers import make_principal
from tests.integration.ops.conftest import Keys, bearer


async def test_the_status_tool_is_for_admins_and_holds_no_secret(services: Services, keys: Keys) -> None:
    from pydantic import SecretStr

    services.settings.ai.provider = "openai"
    services.settings.ai.api_key = SecretStr("sk-very-secret-provider-key")
    async with Client(build_mcp_server(services, principal=services.authenticate(keys.admin))) as client:
        result = await client.call_tool("status", {})
    status = result.structured_content
    assert status is not None
    assert status["engine"] == "local" and status["store"] == "sqlite"
    assert status["llm_provider"] == "openai" and status["llm_configured"] is True
    assert status["checks"]["store"]["ok"] is True
    assert "sk-very-secret" not in json.dumps(status)
    async with Client(build_mcp_server(services, principal=services.authenticate(keys.analyst))) as client:
        names = {tool.name for tool in await client.list_tools()}
        refused = await client.call_tool_mcp("status", {})
    assert "status" not in names and "metrics" in names
    assert refused.is_error


async def test_the_metrics_tool_shows_the_callers_tenant_only(services: Services, keys: Keys) -> None:
    acme = services.authenticate(keys.admin)
    globex = make_principal(services, "globex")[0]
    runs.submit(services, acme, "kind_of_acme", params={})
    runs.submit(services, globex, "kind_of_globex", params={})
    runs.submit(services, globex, "kind_of_globex", params={})
    async with Client(build_mcp_server(services, principal=acme)) as client:
        figures = (await client.call_tool("metrics", {"hours": 1})).structured_content
    assert figures is not None
    assert figures["tenant"] == "acme"
    assert figures["active_runs"] == [{"kind": "kind_of_acme", "state": "queued", "count": 1}]


async def test_detailed_health_checks_each_dependency(api: httpx.AsyncClient, keys: Keys) -> None:
    assert (await api.get("/health/detailed")).status_code == 401
    answer = await api.get("/health/detailed", headers=bearer(keys.analyst))
    report = answer.json()
    assert {"store", "engine", "migrations", "sandbox", "llm"} <= set(report["checks"])
    assert answer.status_code == (200 if report["status"] == "ok" else 503)
    assert (await api.get("/api/v1/health/detailed", headers=bearer(keys.analyst))).status_code == answer.status_code


async def test_a_chosen_llm_provider_without_its_key_degrades_detailed_health(
    services: Services, api: httpx.AsyncClient, keys: Keys
) -> None:
    services.settings.ai.provider = "anthropic"
    answer = await api.get("/health/detailed", headers=bearer(keys.admin))
    assert answer.status_code == 503
    assert answer.json()["checks"]["llm"]["ok"] is False


async def test_service_status_is_for_admins(api: httpx.AsyncClient, keys: Keys) -> None:
    assert (await api.get("/api/v1/status", headers=bearer(keys.analyst))).json()["code"] == "permission_denied"
    status = (await api.get("/api/v1/status", headers=bearer(keys.admin))).json()
    assert status["version"] and status["uptime_seconds"] >= 0


async def test_rest_lists_the_mcp_tools_each_key_sees_with_their_schemas(
    services: Services, api: httpx.AsyncClient, keys: Keys
) -> None:
    admin = (await api.get("/api/v1/mcp/tools", headers=bearer(keys.admin))).json()
    analyst = (await api.get("/api/v1/mcp/tools", headers=bearer(keys.analyst))).json()
    async with Client(build_mcp_server(services, principal=services.authenticate(keys.analyst))) as client:
        listed = {tool.name for tool in await client.list_tools()}
    assert {tool["name"] for tool in analyst["tools"]} == listed
    assert analyst["count"] < admin["count"]
    query = next(tool for tool in analyst["tools"] if tool["name"] == "query_sql")
    assert query["inputSchema"]["properties"]["sql"]
    assert query["annotations"]["readOnlyHint"] is True
    assert analyst["size_bytes"] > 1000
    status = (await api.get("/api/v1/mcp/status", headers=bearer(keys.analyst))).json()
    assert status["tools_visible"] == analyst["count"]
    assert status["endpoint"].endswith("/mcp")


async def test_cors_is_off_by_default_and_answers_the_configured_origins_when_on(
    services: Services, api: httpx.AsyncClient
) -> None:
    preflight = {"Origin": "https://console.example.com", "Access-Control-Request-Method": "GET"}
    off = await api.options("/api/v1/tables", headers=preflight)
    assert "access-control-allow-origin" not in off.headers
    services.settings.cors = CorsSettings(enabled=True, origins=["https://console.example.com"])
    app = create_app(services.settings, services=services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as client:
        allowed = await client.options("/api/v1/tables", headers=preflight)
        other = await client.options("/api/v1/tables", headers={**preflight, "Origin": "https://evil.example"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://console.example.com"
    assert "access-control-allow-origin" not in other.headers


@pytest.fixture
def json_lines() -> io.StringIO:
    stream = io.StringIO()
    root = logging.getLogger()
    uvicorn_access = logging.getLogger("uvicorn.access")
    saved = root.handlers[:], root.level, logs.access_logger.level, uvicorn_access.level
    logs.configure_logging("INFO", stream=stream, json_lines=True)
    yield stream
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    logs.access_logger.setLevel(saved[2])
    uvicorn_access.setLevel(saved[3])


async def test_json_logs_carry_one_request_line_per_call_with_caller_route_duration_and_outcome(
    services: Services, api: httpx.AsyncClient, keys: Keys, json_lines: io.StringIO
) -> None:
    await api.get("/api/v1/runs/nope", headers={**bearer(keys.admin), "X-Request-ID": "req-json"})
    async with Client(build_mcp_server(services, principal=services.authenticate(keys.analyst))) as client:
        await client.call_tool("list_tables", {})
    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    rest = next(line for line in lines if line.get("door") == "rest")
    assert rest["operation"] == "GET /api/v1/runs/{run_id}"
    assert (rest["outcome"], rest["status"], rest["request_id"], rest["tenant"]) == (
        "not_found",
        404,
        "req-json",
        "acme",
    )
    assert rest["principal"].startswith("key:") and rest["duration_ms"] >= 0
    mcp = next(line for line in lines if line.get("door") == "mcp")
    assert (mcp["operation"], mcp["outcome"]) == ("list_tables", "ok")
    assert keys.admin not in json_lines.getvalue()
