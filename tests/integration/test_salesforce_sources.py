"""Salesforce connections through the doors: connect_source over MCP with the client secret and the
refresh token planted and found nowhere else, syncs of an object (full, then incremental merge on
SystemModstamp) through the run model, and the other tenant's ids answering 404 over REST."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fastmcp import Client

from servicetsunami import logs
from servicetsunami.api.app import create_app
from servicetsunami.mcp.server import build_mcp_server
from servicetsunami.services.catalog.query import query_sql
from servicetsunami.services.container import Services
from servicetsunami.services.ingestion import connections as cx
from servicetsunami.services.ingestion import syncs
from servicetsunami.store.models import AuditLog, Connection
from servicetsunami.tenancy import Principal
from tests.fakes.salesforce import CLIENT, REFRESH, FakeSalesforce
from tests.helpers import make_principal
from tests.integration.api.support import login
from tests.integration.salesforce.conftest import ACCOUNT_FIELDS, account


@pytest.fixture
def org() -> Iterator[FakeSalesforce]:
    fake = FakeSalesforce()
    fake.add("Account", ACCOUNT_FIELDS, [account(i) for i in range(1, 31)])
    with fake.running():
        yield fake


def _config(org: FakeSalesforce, **extra: Any) -> dict[str, Any]:
    return {"instance_url": org.base_url, "client_id": CLIENT[0], "backoff_seconds": 0, "objects": ["Account"], **extra}


async def test_over_mcp_an_org_syncs_and_its_secrets_appear_nowhere(
    services: Services, org: FakeSalesforce, caplog: pytest.LogCaptureFixture
) -> None:
    admin, _ = make_principal(services, "acme", "admin")
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(logs.ContextFilter())
    logging.getLogger().addHandler(handler)
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    secrets = {"client_secret": CLIENT[1], "refresh_token": REFRESH}
    try:
        async with Client(build_mcp_server(services, principal=admin)) as client:
            created = await client.call_tool(
                "connect_source",
                {"kind": "salesforce", "name": "crm", "config": _config(org, auth="refresh_token"), "secrets": secrets},
            )
            body = created.structured_content
            assert body is not None and body["test"]["ok"] is True, body
            assert not {"client_secret", "refresh_token"} & set(body["config"]) and body["has_password"] is True
            texts.append(str(created))
            cid = body["id"]
            for name, args in [
                ("list_source_tables", {"connection_id": cid}),
                ("sync_table_to_bronze", {"connection_id": cid, "table_name": "Account"}),
                ("list_syncs", {}),
            ]:
                result = await client.call_tool_mcp(name, args)
                assert not result.is_error, result
                texts.append(str(result.model_dump()))
            bad = await client.call_tool_mcp(
                "connect_source",
                {
                    "kind": "salesforce",
                    "name": "bad",
                    "config": _config(org),
                    "secrets": {"client_secret": CLIENT[1][::-1]},
                },
            )
            texts.append(str(bad.model_dump()))
    finally:
        logging.getLogger().removeHandler(handler)
    everything = "\n".join(texts) + buffer.getvalue() + caplog.text
    for planted in (CLIENT[1], REFRESH, CLIENT[1][::-1]):
        assert planted not in everything
    with open(services.settings.resolved_database_url.removeprefix("sqlite:///"), "rb") as db:
        stored = db.read()
    assert CLIENT[1].encode() not in stored and REFRESH.encode() not in stored
    with services.store.session() as session:
        assert all(REFRESH not in str(row.meta) for row in session.query(AuditLog))
        assert all(CLIENT[1] not in str(row.config) for row in session.query(Connection))


def test_an_object_syncs_in_full_then_merges_what_changed_on_system_modstamp(
    services: Services, acme: Principal, org: FakeSalesforce
) -> None:
    created = cx.connect_source(
        services, acme, kind="salesforce", name="crm", config=_config(org), secrets={"client_secret": CLIENT[1]}
    )
    (table,) = cx.list_source_tables(services, acme, created.id)
    assert table.name == "Account" and table.primary_key == ["Id"] and table.cursor_candidates[0] == "SystemModstamp"
    first = syncs.sync_table_to_bronze(
        services, acme, created.id, "Account", sync_mode="incremental_merge", wait_seconds=60
    )
    assert (first.status, first.rows) == ("succeeded", 30), first.error
    records = org.state.objects["Account"].records
    records[0] = account(1, minutes=500, Name="Renamed")
    records.append(account(31, minutes=501))
    second = syncs.sync_table_to_bronze(
        services, acme, created.id, "Account", sync_mode="incremental_merge", wait_seconds=60
    )
    assert (second.status, second.rows) == ("succeeded", 2), second.error
    counted = query_sql(
        services,
        acme,
        "SELECT count(*), count(DISTINCT Id), max(CASE WHEN Name = 'Renamed' THEN 1 END) FROM bronze.account",
    )
    assert counted.rows == [[31, 31, 1]]
    address = query_sql(services, acme, "SELECT BillingAddress.city FROM bronze.account LIMIT 1")
    assert address.rows == [["Paris"]]


def test_over_rest_a_salesforce_source_is_created_by_kind_and_the_other_tenant_gets_404(
    services: Services, org: FakeSalesforce
) -> None:
    with TestClient(create_app(services.settings, services=services)) as client:
        acme, globex = login(client, services, "acme"), login(client, services, "globex")
        made = client.post(
            "/api/v1/data-sources",
            json={"name": "crm", "kind": "salesforce", "config": _config(org), "secrets": {"client_secret": CLIENT[1]}},
            headers=acme.headers,
        )
        assert made.status_code == 201, made.text
        assert made.json()["test"]["ok"] is True
        sid = made.json()["id"]
        tables = client.get(f"/api/v1/data-sources/{sid}/tables", headers=acme.headers)
        assert [t["name"] for t in tables.json()["items"]] == ["Account"]
        for method, path in [
            ("GET", f"/api/v1/data-sources/{sid}"),
            ("POST", f"/api/v1/data-sources/{sid}/test"),
            ("GET", f"/api/v1/data-sources/{sid}/tables"),
            ("GET", f"/api/v1/data-sources/{sid}/syncs"),
        ]:
            answer = client.request(method, path, headers=globex.headers)
            assert answer.status_code == 404, (method, path, answer.text)
            assert answer.json()["code"] == "not_found"
        metadata = client.post(
            "/api/v1/data-sources",
            json={
                "name": "meta",
                "kind": "salesforce",
                "config": {**_config(org), "instance_url": "http://169.254.169.254"},
                "secrets": {"client_secret": CLIENT[1]},
            },
            headers=acme.headers,
        )
        assert metadata.status_code == 403 and metadata.json()["code"] == "permission_denied"


async def test_the_troubleshooting_prompt_covers_sheets_and_salesforce_problems(services: Services) -> None:
    admin, _ = make_principal(services, "acme", "admin")
    async with Client(build_mcp_server(services, principal=admin)) as client:
        prompt = await client.get_prompt("troubleshoot_connection", {"connection_id": "c-1"})
    text = " ".join(str(getattr(m.content, "text", "")) for m in prompt.messages)
    assert "client_email" in text and "daily API limit" in text and "refresh_token" in text
