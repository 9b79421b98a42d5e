"""/metrics: what is counted (REST per route template, MCP per tool and outcome, rate-limit
refusals, runs, the result cache, queue depths read at scrape) and who may read it."""

from __future__ import annotations

import httpx
from fastmcp import Client
from prometheus_client import REGISTRY
from pydantic import SecretStr

from servicetsunami.mcp.server import build_mcp_server
from servicetsunami.services.container import Services
from servicetsunami.settings import MetricsSettings
from tests.integration.ops.conftest import Keys, bearer


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scraped(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_rest_requests_are_counted_per_route_template_not_per_path(api: httpx.AsyncClient, keys: Keys) -> None:
    route = "/api/v1/runs/{run_id}"
    before = sample("http_requests_total", method="GET", route=route, status="404")
    for run_id in ("a1", "b2", "c3"):
        answer = await api.get(f"/api/v1/runs/{run_id}", headers=bearer(keys.admin))
        assert answer.status_code == 404
    assert sample("http_requests_total", method="GET", route=route, status="404") == before + 3
    assert sample("http_request_duration_seconds_count", method="GET", route=route) >= 3
    text = (await api.get("/metrics")).text
    assert "/api/v1/runs/a1" not in text


async def test_mcp_tool_calls_are_counted_by_tool_and_outcome(services: Services, keys: Keys) -> None:
    ok_before = sample("mcp_requests_total", operation="query_sql", status="ok")
    refused_before = sample("mcp_requests_total", operation="query_sql", status="query_refused")
    async with Client(build_mcp_server(services, principal=services.authenticate(keys.analyst))) as client:
        await client.call_tool("query_sql", {"sql": "SELECT 1 AS one"})
        await client.call_tool("query_sql", {"sql": "DROP TABLE bronze.x"}, raise_on_error=False)
    assert sample("mcp_requests_total", operation="query_sql", status="ok") == ok_before + 1
    assert sample("mcp_requests_total", operation="query_sql", status="query_refused") == refused_before + 1
    assert sample("mcp_request_duration_seconds_count", operation="query_sql") >= 2


async def test_rate_limit_refusals_and_result_cache_hits_are_counted(services: Services, keys: Keys) -> None:
    services.settings.api.query_rate_limit = "2/minute"
    from servicetsunami.api.app import create_app

    app = create_app(services.settings, services=services)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1))
    refused_before = sample("rate_limit_rejections_total", limit="query")
    hits_before = sample("result_cache_requests_total", outcome="hit")
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as api:
        statuses = [
            (
                await api.post("/api/v1/query", json={"sql": "SELECT 41 + 1 AS x"}, headers=bearer(keys.admin))
            ).status_code
            for _ in range(3)
        ]
    assert statuses == [200, 200, 429]
    assert sample("rate_limit_rejections_total", limit="query") == refused_before + 1
    assert sample("result_cache_requests_total", outcome="hit") == hits_before + 1


async def test_metrics_are_open_on_loopback_and_closed_to_other_hosts_without_a_token(
    api: httpx.AsyncClient, remote_api: httpx.AsyncClient
) -> None:
    local = await api.get("/metrics")
    assert local.status_code == 200
    assert local.headers["content-type"].startswith("text/plain")
    assert "mcp_requests_total" in local.text
    refused = await remote_api.get("/metrics")
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"


async def test_another_host_reads_metrics_with_the_token_only(
    services: Services, remote_api: httpx.AsyncClient
) -> None:
    services.settings.metrics = MetricsSettings(token=SecretStr("scrape-me-please"))
    assert (await remote_api.get("/metrics", headers=bearer("wrong"))).json()["code"] == "unauthenticated"
    assert (await remote_api.get("/metrics", headers=bearer("scrape-me-please"))).status_code == 200


async def test_metrics_turned_off_answer_not_found(services: Services, api: httpx.AsyncClient) -> None:
    services.settings.metrics = MetricsSettings(enabled=False)
    answer = await api.get("/metrics")
    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"


async def test_queue_depths_are_read_from_the_store_at_scrape(
    services: Services, api: httpx.AsyncClient, keys: Keys
) -> None:
    from servicetsunami.services.runs import service as runs

    principal = services.authenticate(keys.admin)
    runs.submit(services, principal, "no_such_kind_here", params={})
    text = (await api.get("/metrics")).text
    assert scraped(text, 'runs_active{kind="no_such_kind_here",state="queued"}') == 1.0
    assert scraped(text, "store_up") == 1.0
