"""REST API connections through the doors: connect_source over MCP with the token planted and found
nowhere else, syncs of a resource (full and incremental) through the run model, and a next URL at
the metadata address failing the sync instead of being fetched."""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastmcp import Client

from servicetsunami import logs
from servicetsunami.mcp.server import build_mcp_server
from servicetsunami.services.catalog.query import query_sql
from servicetsunami.services.container import Services
from servicetsunami.services.ingestion import connections as cx
from servicetsunami.services.ingestion import syncs
from servicetsunami.services.runs import service as runs
from servicetsunami.store.models import AuditLog, Connection
from servicetsunami.tenancy import Principal
from tests.fakes.rest_api import TOKEN, FakeApi
from tests.helpers import make_principal


@pytest.fixture
def api() -> Iterator[FakeApi]:
    with FakeApi().running() as fake:
        yield fake


def _config(api: FakeApi) -> dict[str, Any]:
    return {
        "base_url": api.base_url,
        "auth": {"type": "bearer"},
        "backoff_seconds": 0,
        "resources": [
            {
                "name": "items",
                "path": "/bearer/pages",
                "record_selector": "$.data.items",
                "paginator": {"type": "page_number", "total_pages_path": "$.total_pages"},
                "primary_key": ["id"],
            },
            {
                "name": "events",
                "path": "/events",
                "record_selector": "$.events",
                "paginator": {"type": "page_number"},
                "incremental": {"cursor_field": "updated_at", "param": "since"},
                "primary_key": ["id"],
            },
            {"name": "trap", "path": "/evil-next", "record_selector": "$.items", "paginator": {"type": "next_url"}},
        ],
    }


async def test_over_mcp_a_rest_api_syncs_and_its_token_appears_nowhere(
    services: Services, api: FakeApi, caplog: pytest.LogCaptureFixture
) -> None:
    admin, _ = make_principal(services, "acme", "admin")
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(logs.ContextFilter())
    logging.getLogger().addHandler(handler)
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    try:
        async with Client(build_mcp_server(services, principal=admin)) as client:
            created = await client.call_tool(
                "connect_source",
                {"kind": "rest", "name": "shop_api", "config": _config(api), "secrets": {"token": TOKEN}},
            )
            body = created.structured_content
            assert body is not None and body["test"]["ok"] is True, body
            assert "token" not in body["config"] and body["has_password"] is True
            cid = body["id"]
            texts.append(str(created))
            for name, args in [
                ("list_source_tables", {"connection_id": cid}),
                ("sync_table_to_bronze", {"connection_id": cid, "table_name": "items"}),
                (
                    "sync_table_to_bronze",
                    {"connection_id": cid, "table_name": "events", "sync_mode": "incremental_merge"},
                ),
                ("sync_table_to_bronze", {"connection_id": cid, "table_name": "trap"}),
                ("list_syncs", {}),
            ]:
                result = await client.call_tool_mcp(name, args)
                texts.append(str(result.model_dump()))
            bad = await client.call_tool_mcp(
                "connect_source",
                {"kind": "rest", "name": "wrong", "config": _config(api), "secrets": {"token": TOKEN + "x"}},
            )
            texts.append(str(bad.model_dump()))
    finally:
        logging.getLogger().removeHandler(handler)
    everything = "\n".join(texts) + buffer.getvalue() + caplog.text
    assert TOKEN not in everything and base64.b64encode(TOKEN.encode()).decode() not in everything
    with open(services.settings.resolved_database_url.removeprefix("sqlite:///"), "rb") as db:
        assert TOKEN.encode() not in db.read()
    with services.store.session() as session:
        assert all(TOKEN not in str(row.meta) for row in session.query(AuditLog))
        assert all(TOKEN not in str(row.config) for row in session.query(Connection))


def test_rest_resources_sync_in_full_and_incrementally_exactly_once(
    services: Services, acme: Principal, api: FakeApi
) -> None:
    created = cx.connect_source(
        services, acme, kind="rest", name="shop_api", config=_config(api), secrets={"token": TOKEN}
    )
    tables = {t.name: t for t in cx.list_source_tables(services, acme, created.id)}
    assert tables["events"].cursor_candidates == ["updated_at"] and tables["items"].primary_key == ["id"]
    full = syncs.sync_table_to_bronze(services, acme, created.id, "items", wait_seconds=60)
    assert (full.status, full.rows) == ("succeeded", 95), full.error
    first = syncs.sync_table_to_bronze(
        services, acme, created.id, "events", sync_mode="incremental_append", wait_seconds=60
    )
    assert (first.status, first.rows) == ("succeeded", 40), first.error
    api.state.events.append({"id": 41, "kind": "late", "updated_at": "2024-03-01T02:00:00Z"})
    second = syncs.sync_table_to_bronze(
        services, acme, created.id, "events", sync_mode="incremental_append", wait_seconds=60
    )
    assert (second.status, second.rows) == ("succeeded", 1), second.error  # the repeated last event is dropped
    counted = query_sql(services, acme, "SELECT count(*) AS n, count(DISTINCT id) AS ids FROM bronze.events")
    assert counted.rows == [[41, 41]]


def test_a_sync_whose_next_url_points_at_the_metadata_address_fails_without_fetching_it(
    services: Services, acme: Principal, api: FakeApi
) -> None:
    created = cx.connect_source(
        services, acme, kind="rest", name="shop_api", config=_config(api), secrets={"token": TOKEN}
    )
    run = syncs.sync_table_to_bronze(services, acme, created.id, "trap", wait_seconds=60)
    assert run.status == "failed"
    assert runs.get_run(services, acme, run.run_id).error_code == "permission_denied", run.error
    assert not any("169.254" in path for path in api.state.requests)
