"""Compute through the doors: locally the sandbox pool as one compute (its state, confinement, the
caller's live contexts, the limits) that cannot be started, terminated or resized; on Databricks the
workspace's all-purpose clusters (the fake's Clusters API through the SDK)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from servicetsunami.api.app import create_app
from servicetsunami.services.container import Services
from servicetsunami.services.notebooks import compute, contexts
from servicetsunami.services.notebooks import runs as nbruns
from servicetsunami.services.ops import listings
from tests.fakes.databricks.compute import DEFAULT_CLUSTER_ID
from tests.helpers import make_principal
from tests.integration.api.support import login
from tests.integration.mcp.support import error_code, local_client


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services.settings, services=services)) as c:
        yield c


@pytest.mark.slow
async def test_locally_the_one_compute_is_the_sandbox_pool_with_the_callers_live_contexts(services: Services) -> None:
    acme, key = make_principal(services, "acme", "admin")
    globex, _ = make_principal(services, "globex", "admin")
    made = contexts.create_context(services, globex)  # another tenant's context is not counted
    try:
        async with local_client(services, key) as client:
            listed = await client.call_tool("list_clusters", {})
            assert listed.structured_content is not None
            [pool] = listed.structured_content["clusters"]
            assert (pool["id"], pool["state"], pool["engine"]) == ("sandbox", "RUNNING", "local")
            assert pool["detail"]["sandbox"] == f"bubblewrap, separate uid {services.settings.sandbox.uid}"
            assert pool["detail"]["live_contexts"] == 0
            assert pool["detail"]["memory_mb"] == services.settings.sandbox.memory_mb
            mine = contexts.create_context(services, acme)
            got = await client.call_tool("get_cluster", {"cluster_id": "sandbox"})
            assert got.structured_content is not None and got.structured_content["detail"]["live_contexts"] == 1
            contexts.destroy_context(services, acme, mine.id)
            for tool, args in (
                ("start_cluster", {}),
                ("terminate_cluster", {}),
                ("resize_cluster", {"num_workers": 2}),
            ):
                refused = await client.call_tool_mcp(tool, {"cluster_id": "sandbox", **args})
                assert error_code(refused) == "not_supported", tool
            missing = await client.call_tool_mcp("get_cluster", {"cluster_id": "0101-000000-abc"})
            assert error_code(missing) == "not_found"
            bad = await client.call_tool_mcp("get_cluster", {"cluster_id": "../x"})
            assert error_code(bad) == "invalid_input"
    finally:
        contexts.destroy_context(services, globex, made.id)


async def test_the_pool_says_why_code_cannot_run_when_the_sandbox_cannot_start(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nbruns.bwrap, "probe", lambda uid: "bubblewrap is not installed")
    _, key = make_principal(services, "acme", "engineer")
    async with local_client(services, key) as client:
        got = await client.call_tool("get_cluster", {"cluster_id": "sandbox"})
        assert got.structured_content is not None
        assert got.structured_content["state"] == "ERROR"
        assert "bubblewrap is not installed" in got.structured_content["state_message"]
        monkeypatch.setattr(services.settings.sandbox, "unsandboxed", True)
        got = await client.call_tool("get_cluster", {"cluster_id": "sandbox"})
        assert got.structured_content is not None and got.structured_content["state"] == "RUNNING"
        assert got.structured_content["detail"]["sandbox"].startswith("none")


async def test_only_admins_see_and_use_the_cluster_actions(services: Services) -> None:
    _, key = make_principal(services, "acme", "engineer")
    async with local_client(services, key) as client:
        names = {t.name for t in await client.list_tools()}
        assert {"list_clusters", "get_cluster"} <= names
        assert not names & {"start_cluster", "terminate_cluster", "resize_cluster"}
        refused = await client.call_tool_mcp("terminate_cluster", {"cluster_id": "sandbox"})
        assert error_code(refused) == "permission_denied"


def test_rest_lists_the_pool_and_answers_not_supported_for_its_actions(client: TestClient, services: Services) -> None:
    admin = login(client, services, "acme")
    listed = client.get("/api/v1/clusters", headers=admin.headers)
    assert listed.status_code == 200, listed.text
    assert [c["id"] for c in listed.json()["clusters"]] == ["sandbox"]
    assert client.get("/api/v1/clusters/sandbox", headers=admin.headers).json()["state"] == "RUNNING"
    assert client.get("/api/v1/clusters/nope", headers=admin.headers).json()["code"] == "not_found"
    resized = client.post("/api/v1/clusters/sandbox/resize", json={"num_workers": 2}, headers=admin.headers)
    assert (resized.status_code, resized.json()["code"]) == (501, "not_supported")
    stopped = client.post("/api/v1/clusters/sandbox/terminate", headers=admin.headers)
    assert (stopped.status_code, stopped.json()["code"]) == (501, "not_supported")
    analyst = login(client, services, "acme", role="analyst")
    assert client.post("/api/v1/clusters/sandbox/start", headers=analyst.headers).status_code == 403


async def test_on_databricks_the_tools_list_terminate_start_and_resize_the_workspace_clusters(
    on_databricks: Services,
) -> None:
    _, key = make_principal(on_databricks, "acme", "admin")
    async with local_client(on_databricks, key) as client:
        listed = await client.call_tool("list_clusters", {})
        assert listed.structured_content is not None
        [cluster] = listed.structured_content["clusters"]
        assert (cluster["id"], cluster["state"], cluster["num_workers"]) == (DEFAULT_CLUSTER_ID, "RUNNING", 1)
        assert cluster["detail"]["data_security_mode"] == "SINGLE_USER"

        async def state_after(tool: str, **args: object) -> tuple[str, str]:
            acted = await client.call_tool(tool, {"cluster_id": DEFAULT_CLUSTER_ID, **args})
            polled = await client.call_tool("get_cluster", {"cluster_id": DEFAULT_CLUSTER_ID})
            assert acted.structured_content is not None and polled.structured_content is not None
            return acted.structured_content["state"], polled.structured_content["state"]

        assert await state_after("terminate_cluster") == ("TERMINATING", "TERMINATED")
        too_early = await client.call_tool_mcp("resize_cluster", {"cluster_id": DEFAULT_CLUSTER_ID, "num_workers": 3})
        assert error_code(too_early) == "invalid_input"  # a terminated cluster cannot be resized
        assert await state_after("start_cluster") == ("PENDING", "RUNNING")
        scale = {"min_workers": 2, "max_workers": 8}
        assert await state_after("resize_cluster", autoscale=scale) == ("RESIZING", "RUNNING")
        got = await client.call_tool("get_cluster", {"cluster_id": DEFAULT_CLUSTER_ID})
        assert got.structured_content is not None and got.structured_content["autoscale"] == scale
        both = await client.call_tool_mcp(
            "resize_cluster", {"cluster_id": DEFAULT_CLUSTER_ID, "num_workers": 1, "autoscale": scale}
        )
        assert error_code(both) == "invalid_input"
        missing = await client.call_tool_mcp("get_cluster", {"cluster_id": "0101-000000-nothere"})
        assert error_code(missing) == "not_found"
        sandbox = await client.call_tool_mcp("get_cluster", {"cluster_id": "sandbox"})
        assert error_code(sandbox) == "not_found"


def test_the_workspace_cluster_listing_is_remembered_and_forgotten_by_every_tenant_after_an_action(
    on_databricks: Services,
) -> None:
    acme = make_principal(on_databricks, "acme", "admin")[0]
    globex = make_principal(on_databricks, "globex", "analyst")[0]
    cache = listings.cache_of(on_databricks)
    [before] = compute.list_clusters(on_databricks, globex)
    misses = cache.misses
    assert compute.list_clusters(on_databricks, globex) == [before]
    assert cache.misses == misses  # remembered: no second Clusters API call
    compute.terminate_cluster(on_databricks, acme, DEFAULT_CLUSTER_ID)
    [after] = compute.list_clusters(on_databricks, globex)
    assert cache.misses == misses + 1
    assert (before.state, after.state) == ("RUNNING", "TERMINATED")
    compute.start_cluster(on_databricks, acme, DEFAULT_CLUSTER_ID)
    assert compute.list_clusters(on_databricks, globex)[0].state != "TERMINATED"
    compute.resize_cluster(on_databricks, acme, DEFAULT_CLUSTER_ID, num_workers=4)
    assert compute.list_clusters(on_databricks, globex)[0].num_workers == 4
