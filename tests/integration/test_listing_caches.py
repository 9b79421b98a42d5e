"""The TTL caches of workspace listings (jobs, notebooks, warehouses): a listing is remembered for its
TTL, forgotten at once by every worker after a write through the service, and never shared between
tenants (in-process clients as over stdio, and the HTTP door)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from servicetsunami.mcp.server import build_mcp_server
from servicetsunami.services.catalog import warehouses
from servicetsunami.services.container import Services
from servicetsunami.services.notebooks import notebooks
from servicetsunami.services.ops import listings
from servicetsunami.services.pipelines import jobs
from servicetsunami.settings import CacheSettings, Settings
from servicetsunami.store.repositories import notebooks as notebooks_repo
from tests.helpers import make_principal
from tests.integration.mcp.support import running_http_server


def _job(name: str) -> dict[str, Any]:
    return {"name": name, "tasks": [{"task_key": "a", "kind": "sql", "config": {"sql": "SELECT 1"}}]}


def _settings(home: Path, **cache: Any) -> Settings:
    return Settings(home=home, cache=CacheSettings(**cache), _env_file=None)  # type: ignore[call-arg]  # pydantic-settings option


def _behind_the_service(svc: Services, tenant_id: str, path: str) -> None:
    """A notebook row written straight to the store, as a change the service was not told of."""
    with svc.store.session() as session:
        notebooks_repo.create_notebook(
            session, tenant_id=tenant_id, path=path, language="python", content='{"cells": []}', created_by="x"
        )


def test_a_listing_is_remembered_for_its_ttl_and_a_write_through_the_service_shows_at_once(tmp_path: Path) -> None:
    svc = Services.open(_settings(tmp_path / "home"))
    try:
        acme = make_principal(svc, "acme", "engineer")[0]
        notebooks.create_notebook(svc, acme, "/first", cells=[{"source": "1"}])
        assert [n.path for n in notebooks.list_notebooks(svc, acme).notebooks] == ["/first"]
        _behind_the_service(svc, acme.tenant_id, "/unannounced")
        assert [n.path for n in notebooks.list_notebooks(svc, acme).notebooks] == ["/first"]  # remembered
        notebooks.create_notebook(svc, acme, "/second", cells=[{"source": "2"}])
        paths = [n.path for n in notebooks.list_notebooks(svc, acme).notebooks]
        assert paths == ["/first", "/second", "/unannounced"]
        assert listings.cache_of(svc).hits >= 1
    finally:
        svc.close()


def test_a_ttl_of_zero_or_a_disabled_cache_reads_every_time(tmp_path: Path) -> None:
    for settings in (
        _settings(tmp_path / "off", enabled=False),
        _settings(tmp_path / "zero", ttl={"notebooks": 0}),
    ):
        svc = Services.open(settings)
        try:
            acme = make_principal(svc, "acme", "engineer")[0]
            assert notebooks.list_notebooks(svc, acme).notebooks == []
            _behind_the_service(svc, acme.tenant_id, "/unannounced")
            assert [n.path for n in notebooks.list_notebooks(svc, acme).notebooks] == ["/unannounced"]
        finally:
            svc.close()


def test_a_write_in_one_worker_empties_the_cache_of_another(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "home")
    first, second = Services.open(settings), Services.open(settings)  # two workers on one data folder
    try:
        acme = make_principal(first, "acme", "engineer")[0]
        assert jobs.list_jobs(first, acme) == []
        jobs.create_job(second, acme, _job("nightly"))
        assert [j.name for j in jobs.list_jobs(first, acme)] == ["nightly"]
        jobs.delete_job(second, acme, jobs.list_jobs(second, acme)[0].job_id)
        assert jobs.list_jobs(first, acme) == []
    finally:
        first.close()
        second.close()


def test_starting_a_warehouse_empties_every_tenants_warehouse_listing(tmp_path: Path) -> None:
    svc = Services.open(_settings(tmp_path / "home"))
    try:
        acme = make_principal(svc, "acme", "admin")[0]
        globex = make_principal(svc, "globex", "admin")[0]
        listed = warehouses.list_warehouses(svc, globex)
        before = listings.cache_of(svc).misses
        warehouses.start_warehouse(svc, acme, listed[0].id)
        assert warehouses.list_warehouses(svc, globex) == listed
        assert listings.cache_of(svc).misses == before + 1
    finally:
        svc.close()


async def test_listings_are_never_shared_between_tenants_in_process_or_over_http(tmp_path: Path) -> None:
    svc = Services.open(_settings(tmp_path / "home"))
    try:
        acme, acme_key = make_principal(svc, "acme", "engineer")
        globex, globex_key = make_principal(svc, "globex", "engineer")
        notebooks.create_notebook(svc, acme, "/acme_only", cells=[{"source": "1"}])
        jobs.create_job(svc, acme, _job("acme_job"))
        seen: dict[str, Any] = {}
        for name, principal in (("acme", acme), ("globex", globex)):
            async with Client(build_mcp_server(svc, principal=principal)) as client:
                for _ in range(2):  # the second answer comes from the cache
                    books = await client.call_tool_mcp("list_notebooks", {})
                    listed_jobs = await client.call_tool_mcp("list_jobs", {})
                seen[name] = (books.structured_content, listed_jobs.structured_content)
        with running_http_server(svc) as server:
            for name, key in (("acme_http", acme_key), ("globex_http", globex_key)):
                async with Client(StreamableHttpTransport(server.mcp_url, auth=key)) as client:
                    books = await client.call_tool_mcp("list_notebooks", {})
                    listed_jobs = await client.call_tool_mcp("list_jobs", {})
                seen[name] = (books.structured_content, listed_jobs.structured_content)
    finally:
        svc.close()
    assert "/acme_only" in str(seen["acme"][0]) and "acme_job" in str(seen["acme"][1])
    assert seen["acme_http"] == seen["acme"]
    for other in ("globex", "globex_http"):
        assert "/acme_only" not in str(seen[other][0]) and "acme_job" not in str(seen[other][1])
