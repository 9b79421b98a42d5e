"""Google Sheets connections through the doors: connect_source over MCP with the service account key
planted and found nowhere else, syncs of a sheet (full and incremental) through the run model, the
other tenant's ids answering 404 over REST, and a key's own token_uri never reached."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fastmcp import Client
from typer.testing import CliRunner

from servicetsunami import logs
from servicetsunami.api.app import create_app
from servicetsunami.cli import app
from servicetsunami.mcp.server import build_mcp_server
from servicetsunami.services.catalog.query import query_sql
from servicetsunami.services.container import Services
from servicetsunami.services.ingestion import connections as cx
from servicetsunami.services.ingestion import syncs
from servicetsunami.settings import Settings
from servicetsunami.store.models import AuditLog, Connection
from servicetsunami.tenancy import Principal
from tests.fakes.google_sheets import FakeSheets
from tests.helpers import make_principal
from tests.integration.api.support import login
from tests.integration.test_cli import KEY_RE

EMAIL = "sync@project.iam.gserviceaccount.com"


@pytest.fixture
def fake() -> Iterator[FakeSheets]:
    with FakeSheets().running() as running:
        yield running


@pytest.fixture
def settings(tmp_path: Path, fake: FakeSheets) -> Settings:
    return Settings(  # type: ignore[call-arg]  # _env_file is a pydantic-settings option
        home=tmp_path / "home",
        _env_file=None,
        sync={"google_api_url": fake.base_url, "google_token_url": fake.token_url, "google_docs_url": fake.base_url},
    )


@pytest.fixture
def key(fake: FakeSheets) -> str:
    key = fake.service_account(EMAIL)
    start = dt.datetime(2024, 5, 1, 8, 0)
    rows: list[list[Any]] = [["id", "customer", "amount", "updated"]]
    rows += [[i, f"c{i}", i * 2.5, start + dt.timedelta(hours=i)] for i in range(1, 41)]
    fake.add("orders-book-01", {"Orders": rows}, shared_with={EMAIL})
    return key


def _private_part(key: str) -> str:
    return str(json.loads(key)["private_key"]).splitlines()[5]


async def test_over_mcp_a_spreadsheet_syncs_and_its_key_appears_nowhere(
    services: Services, fake: FakeSheets, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    admin, _ = make_principal(services, "acme", "admin")
    planted = _private_part(key)
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(logs.ContextFilter())
    logging.getLogger().addHandler(handler)
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    config = {"spreadsheet_id": "orders-book-01", "backoff_seconds": 0}
    try:
        async with Client(build_mcp_server(services, principal=admin)) as client:
            created = await client.call_tool(
                "connect_source",
                {"kind": "sheets", "name": "orders", "config": config, "secrets": {"service_account_key": key}},
            )
            body = created.structured_content
            assert body is not None and body["test"]["ok"] is True, body
            assert "service_account_key" not in body["config"] and body["has_password"] is True
            texts.append(str(created))
            cid = body["id"]
            for name, args in [
                ("list_source_kinds", {}),
                ("list_source_tables", {"connection_id": cid}),
                ("sync_table_to_bronze", {"connection_id": cid, "table_name": "Orders"}),
                ("list_syncs", {}),
            ]:
                result = await client.call_tool_mcp(name, args)
                assert not result.is_error, result
                texts.append(str(result.model_dump()))
            broken = key.replace(planted, planted[::-1])
            bad = await client.call_tool_mcp(
                "connect_source",
                {"kind": "sheets", "name": "bad", "config": config, "secrets": {"service_account_key": broken}},
            )
            texts.append(str(bad.model_dump()))
    finally:
        logging.getLogger().removeHandler(handler)
    everything = "\n".join(texts) + buffer.getvalue() + caplog.text
    assert planted not in everything and planted[::-1] not in everything
    with open(services.settings.resolved_database_url.removeprefix("sqlite:///"), "rb") as db:
        assert planted.encode() not in db.read()
    with services.store.session() as session:
        assert all(planted not in str(row.meta) for row in session.query(AuditLog))
        assert all(planted not in str(row.config) for row in session.query(Connection))
    assert not any("169.254" in path for path in fake.state.requests)


def test_a_sheet_syncs_in_full_then_incrementally_exactly_once(
    services: Services, acme: Principal, fake: FakeSheets, key: str
) -> None:
    created = cx.connect_source(
        services,
        acme,
        kind="sheets",
        name="orders",
        config={"spreadsheet_id": "orders-book-01"},
        secrets={"service_account_key": key},
    )
    (table,) = cx.list_source_tables(services, acme, created.id)
    assert table.name == "Orders" and "updated" in table.cursor_candidates
    full = syncs.sync_table_to_bronze(services, acme, created.id, "Orders", wait_seconds=60)
    assert (full.status, full.rows) == ("succeeded", 40), full.error
    first = syncs.sync_table_to_bronze(
        services,
        acme,
        created.id,
        "Orders",
        sync_mode="incremental_append",
        cursor_column="updated",
        target_table="bronze.orders_log",
        wait_seconds=60,
    )
    assert (first.status, first.rows) == ("succeeded", 40), first.error
    fake.state.spreadsheets["orders-book-01"].sheets[0].rows.append([41, "late", 1.0, dt.datetime(2024, 6, 1)])
    second = syncs.sync_table_to_bronze(
        services,
        acme,
        created.id,
        "Orders",
        sync_mode="incremental_append",
        cursor_column="updated",
        target_table="bronze.orders_log",
        wait_seconds=60,
    )
    assert (second.status, second.rows) == ("succeeded", 1), second.error
    counted = query_sql(services, acme, "SELECT count(*), count(DISTINCT id), max(updated) FROM bronze.orders_log")
    assert counted.rows[0][:2] == [41, 41]


def test_over_rest_a_sheets_source_is_created_by_kind_and_the_other_tenant_gets_404(
    services: Services, key: str
) -> None:
    with TestClient(create_app(services.settings, services=services)) as client:
        acme, globex = login(client, services, "acme"), login(client, services, "globex")
        kinds = client.get("/api/v1/data-sources/kinds", headers=acme.headers)
        sheets_kind = next(k for k in kinds.json() if k["kind"] == "sheets")
        assert sheets_kind["config_schema"]["properties"]["service_account_key"]["writeOnly"] is True
        made = client.post(
            "/api/v1/data-sources",
            json={
                "name": "orders",
                "kind": "sheets",
                "config": {"spreadsheet_id": "orders-book-01"},
                "secrets": {"service_account_key": key},
            },
            headers=acme.headers,
        )
        assert made.status_code == 201, made.text
        assert made.json()["test"]["ok"] is True
        sid = made.json()["id"]
        for method, path in [
            ("GET", f"/api/v1/data-sources/{sid}"),
            ("POST", f"/api/v1/data-sources/{sid}/test"),
            ("GET", f"/api/v1/data-sources/{sid}/tables"),
            ("GET", f"/api/v1/data-sources/{sid}/syncs"),
        ]:
            answer = client.request(method, path, headers=globex.headers)
            assert answer.status_code == 404, (method, path, answer.text)
            assert answer.json()["code"] == "not_found"
        without_key = client.post(
            "/api/v1/data-sources",
            json={"name": "bare", "kind": "sheets", "config": {"spreadsheet_id": "orders-book-01"}},
            headers=acme.headers,
        )
        assert without_key.status_code == 400 and without_key.json()["code"] == "invalid_input"


def test_the_cli_connects_a_spreadsheet_with_the_key_read_from_a_file_and_syncs_it(
    tmp_path: Path, fake: FakeSheets, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TSUNAMI_HOME", str(tmp_path / "cli-home"))
    monkeypatch.setenv("TSUNAMI_SYNC__GOOGLE_API_URL", fake.base_url)
    monkeypatch.setenv("TSUNAMI_SYNC__GOOGLE_TOKEN_URL", fake.token_url)
    for name in ("TSUNAMI_API_KEY", "TSUNAMI_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    key_file = tmp_path / "key.json"
    key_file.write_text(key)
    runner = CliRunner()
    made = runner.invoke(app, ["tenants", "create", "acme"])
    api_key = KEY_RE.search(made.output)
    assert made.exit_code == 0 and api_key is not None, made.output
    env = {"TSUNAMI_API_KEY": api_key.group(0)}
    args = ["connections", "connect", "sheets", "orders", "--set", "spreadsheet_id=orders-book-01"]
    connected = runner.invoke(app, [*args, "--secret-file", f"service_account_key={key_file}"], env=env)
    assert connected.exit_code == 0, connected.output
    assert "ok 1 sheets" in connected.output and _private_part(key) not in connected.output
    cid = re.search(r"\(([0-9a-f-]{36})\)", connected.output)
    assert cid is not None
    synced = runner.invoke(app, ["sync", cid.group(1), "Orders"], env=env)
    assert synced.exit_code == 0 and "succeeded: 40 rows" in synced.output, synced.output
    missing = runner.invoke(app, [*args, "--secret-file", f"service_account_key={tmp_path / 'gone.json'}"], env=env)
    assert missing.exit_code != 0
