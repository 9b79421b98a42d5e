"""The audit log: every write call through either door is recorded once, with who, what, the request
and how it ended; reads are not; admins read their own tenant's log, filtered and paged."""

from __future__ import annotations

import httpx
from fastmcp import Client

from servicetsunami.mcp.server import build_mcp_server
from servicetsunami.services.container import Services
from tests.helpers import make_principal
from tests.integration.ops.conftest import Keys, bearer

JOB = {"name": "nightly", "tasks": [{"task_key": "one", "sql_task": {"query": "SELECT 1"}}]}


async def entries(api: httpx.AsyncClient, key: str, **params: str) -> list[dict[str, object]]:
    answer = await api.get("/api/v1/audit", params=params, headers=bearer(key))
    assert answer.status_code == 200, answer.text
    items: list[dict[str, object]] = answer.json()["items"]
    return items


async def test_a_rest_write_is_recorded_with_its_caller_request_and_outcome(api: httpx.AsyncClient, keys: Keys) -> None:
    created = await api.post(
        "/api/v1/pipelines", json={"name": "x"}, headers={**bearer(keys.admin), "X-Request-ID": "req-1"}
    )
    assert created.status_code == 400
    await api.get("/api/v1/pipelines", headers=bearer(keys.admin))
    found = await entries(api, keys.admin, door="rest")
    assert len(found) == 1  # the GET is not a write
    entry = found[0]
    assert entry["action"] == "POST /api/v1/pipelines"
    assert entry["target"] == "/api/v1/pipelines"
    assert entry["request_id"] == "req-1"
    assert entry["outcome"] == "invalid_job"
    assert str(entry["subject"]).startswith("key:")


async def test_an_mcp_call_of_a_tool_that_writes_is_recorded_and_a_read_only_one_is_not(
    services: Services, api: httpx.AsyncClient, keys: Keys
) -> None:
    async with Client(build_mcp_server(services, principal=services.authenticate(keys.admin))) as client:
        await client.call_tool("list_tables", {})
        await client.call_tool("delete_job", {"job_id": "nope"}, raise_on_error=False)
    found = await entries(api, keys.admin, door="mcp")
    assert [(e["action"], e["outcome"]) for e in found] == [("mcp:delete_job", "not_found")]


async def test_a_refused_write_is_recorded_too(services: Services, api: httpx.AsyncClient, keys: Keys) -> None:
    async with Client(build_mcp_server(services, principal=services.authenticate(keys.analyst))) as client:
        await client.call_tool("delete_job", {"job_id": "nope"}, raise_on_error=False)
    found = await entries(api, keys.admin, door="mcp")
    assert [e["outcome"] for e in found] == ["permission_denied"]


async def test_only_admins_read_the_audit_log_and_only_their_own_tenants(
    services: Services, api: httpx.AsyncClient, keys: Keys
) -> None:
    denied = await api.get("/api/v1/audit", headers=bearer(keys.analyst))
    assert denied.status_code == 403
    assert denied.json()["code"] == "permission_denied"
    await api.post("/api/v1/pipelines", json={"name": "x"}, headers=bearer(keys.admin))
    other = make_principal(services, "globex")[1]
    assert await entries(api, other, door="rest") == []


async def test_the_audit_log_is_filtered_and_paged_newest_first(api: httpx.AsyncClient, keys: Keys) -> None:
    for _ in range(5):
        await api.post("/api/v1/pipelines", json={"name": "x"}, headers=bearer(keys.admin))
    await api.delete("/api/v1/pipelines/nope", headers=bearer(keys.admin))
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"door": "rest", "limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/api/v1/audit", params=params, headers=bearer(keys.admin))).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 6
    newest = await entries(api, keys.admin, door="rest", limit="1")
    assert str(newest[0]["action"]).startswith("DELETE ")
    posts = await entries(api, keys.admin, action="POST *")
    assert len(posts) == 5
    assert await entries(api, keys.admin, action="POST /api/v1/pipelines", outcome="ok") == []
