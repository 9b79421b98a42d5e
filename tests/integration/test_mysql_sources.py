"""MySQL/MariaDB connections through every door: connect_source and list_source_kinds over MCP and
REST, a sync through the run model, the password planted in every request and found nowhere else,
the other tenant's ids answering 404, and hosts vetted as for PostgreSQL. Real MariaDB at
TSUNAMI_TEST_MYSQL_URL; these fail, never skip, when it is unreachable."""

from __future__ import annotations

import base64
import io
import logging
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fastmcp import Client

from servicetsunami import logs
from servicetsunami.api.app import create_app
from servicetsunami.errors import InvalidInput, PermissionDenied
from servicetsunami.mcp.server import build_mcp_server
from servicetsunami.services.container import Services
from servicetsunami.services.ingestion import connections as cx
from servicetsunami.services.ingestion import syncs
from servicetsunami.store.models import AuditLog, Connection
from servicetsunami.tenancy import Principal
from tests.helpers import make_principal
from tests.integration.api.support import login
from tests.integration.mysql.support import execute, mysql_config, scratch_database

pytestmark = pytest.mark.mysql

PLANTED = "planted-Secret-" + uuid.uuid4().hex


@pytest.fixture
def database() -> Iterator[str]:
    with scratch_database() as name:
        execute(
            name,
            "CREATE TABLE people (id int PRIMARY KEY, name varchar(40), updated_at datetime NOT NULL)",
            "INSERT INTO people SELECT seq, CONCAT('p', seq), TIMESTAMPADD(HOUR, seq, '2024-01-01') FROM seq_1_to_250",
        )
        yield name


@pytest.fixture
def reader(database: str) -> Iterator[str]:
    """A MariaDB user whose password is the planted secret, allowed to read ``database``."""
    user = f"tsu_{secrets.token_hex(4)}"
    execute("test", f"CREATE USER '{user}'@'%' IDENTIFIED BY '{PLANTED}'")
    execute("test", f"CREATE USER '{user}'@'localhost' IDENTIFIED BY '{PLANTED}'")
    execute("test", f"GRANT SELECT ON `{database}`.* TO '{user}'@'%', '{user}'@'localhost'")
    try:
        yield user
    finally:
        execute("test", f"DROP USER IF EXISTS '{user}'@'%', '{user}'@'localhost'")


def _config(database: str, user: str | None = None) -> dict[str, Any]:
    base = mysql_config(database)
    return {"host": base.host, "port": base.port, "database": database, "user": user or base.user}


def test_list_source_kinds_gives_each_kinds_settings_schema_and_its_secrets(
    services: Services, acme: Principal
) -> None:
    kinds = {k.kind: k for k in cx.list_source_kinds(services, acme)}
    assert {"postgres", "mysql", "files"} <= set(kinds)
    mysql = kinds["mysql"]
    assert mysql.secrets == ["password"] and mysql.description
    properties = mysql.config_schema["properties"]
    assert {"host", "port", "database", "user", "password", "ssl_mode"} <= set(properties)
    assert properties["password"]["writeOnly"] is True
    assert all(p.get("description") for name, p in properties.items())


def test_connect_source_refuses_secrets_in_config_unknown_settings_and_unknown_secrets(
    services: Services, acme: Principal, database: str
) -> None:
    config = _config(database)
    for kwargs in (
        {"config": {**config, "password": "x"}},
        {"config": {**config, "hostname": "x"}},
        {"config": config, "secrets": {"token": "x"}},
        {"config": {**config, "port": 70000}},
    ):
        with pytest.raises(InvalidInput) as caught:
            cx.connect_source(services, acme, kind="mysql", name="m", **kwargs)
        assert caught.value.code == "invalid_input"
    with pytest.raises(InvalidInput):
        cx.connect_source(services, acme, kind="mainframe", name="m", config={})


def test_a_mysql_host_at_a_metadata_address_is_refused(services: Services, acme: Principal) -> None:
    config = {"host": "169.254.169.254", "database": "d", "user": "u"}
    with pytest.raises(PermissionDenied) as caught:
        cx.connect_source(services, acme, kind="mysql", name="meta", config=config)
    assert caught.value.code == "permission_denied"


async def test_over_mcp_a_mysql_table_syncs_and_the_password_appears_nowhere(
    services: Services, database: str, reader: str, caplog: pytest.LogCaptureFixture
) -> None:
    admin, _ = make_principal(services, "acme", "admin")
    buffer = io.StringIO()
    stream_log = logging.StreamHandler(buffer)
    stream_log.addFilter(logs.ContextFilter())
    logging.getLogger().addHandler(stream_log)
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    try:
        async with Client(build_mcp_server(services, principal=admin)) as client:
            kinds = await client.call_tool("list_source_kinds", {})
            assert "mysql" in {k["kind"] for k in kinds.structured_content["kinds"]}  # type: ignore[index]
            created = await client.call_tool(
                "connect_source",
                {
                    "kind": "mysql",
                    "name": "shop",
                    "config": _config(database, reader),
                    "secrets": {"password": PLANTED},
                },
            )
            body = created.structured_content
            assert body is not None and body["test"]["ok"] is True, body
            assert body["kind"] == "mysql" and body["has_password"] is True and "password" not in body["config"]
            cid = body["id"]
            texts.append(str(created))
            for name, args in [
                ("test_connection", {"connection_id": cid}),
                ("list_source_tables", {"connection_id": cid}),
                ("sync_table_to_bronze", {"connection_id": cid, "table_name": f"{database}.people"}),
                (
                    "sync_table_to_bronze",
                    {"connection_id": cid, "table_name": f"{database}.people", "sync_mode": "incremental_append"},
                ),
                ("list_syncs", {}),
            ]:
                result = await client.call_tool_mcp(name, args)
                assert not result.is_error, result
                texts.append(str(result.model_dump()))
            synced = await client.call_tool_mcp(
                "sync_table_to_bronze",
                {"connection_id": cid, "table_name": f"{database}.people", "target_table": "bronze.people2"},
            )
            assert synced.structured_content is not None and synced.structured_content["rows"] == 250
            for bad in (
                {
                    "kind": "mysql",
                    "name": "wrong",
                    "config": _config(database, reader),
                    "secrets": {"password": PLANTED + "x"},
                },
                {
                    "kind": "mysql",
                    "name": "down",
                    "config": {**_config(database, reader), "port": 1},
                    "secrets": {"password": PLANTED},
                },
                {
                    "kind": "mysql",
                    "name": "shop",
                    "config": _config(database, reader),
                    "secrets": {"password": PLANTED},
                },
                {"kind": "mysql", "name": "inclear", "config": {**_config(database, reader), "password": PLANTED}},
            ):
                texts.append(str((await client.call_tool_mcp("connect_source", bad)).model_dump()))
            texts.append(str(await client.read_resource(f"datasource://{cid}/status")))
    finally:
        logging.getLogger().removeHandler(stream_log)
    everything = "\n".join(texts) + buffer.getvalue() + caplog.text
    assert PLANTED not in everything
    assert base64.b64encode(PLANTED.encode()).decode() not in everything
    with open(services.settings.resolved_database_url.removeprefix("sqlite:///"), "rb") as db:
        assert PLANTED.encode() not in db.read()
    with services.store.session() as session:
        assert all(PLANTED not in str(row.meta) for row in session.query(AuditLog))
        assert all(PLANTED not in str(row.config) for row in session.query(Connection))


def test_over_rest_a_mysql_source_is_created_by_kind_and_the_other_tenant_gets_404(
    services: Services, database: str
) -> None:
    with TestClient(create_app(services.settings, services=services)) as client:
        acme, globex = login(client, services, "acme"), login(client, services, "globex")
        kinds = client.get("/api/v1/data-sources/kinds", headers=acme.headers)
        assert kinds.status_code == 200 and "mysql" in {k["kind"] for k in kinds.json()}
        made = client.post(
            "/api/v1/data-sources",
            json={"name": "shop", "kind": "mysql", "config": _config(database), "secrets": {}},
            headers=acme.headers,
        )
        assert made.status_code == 201, made.text
        assert made.json()["test"]["ok"] is True and made.json()["kind"] == "mysql"
        sid = made.json()["id"]
        tables = client.get(f"/api/v1/data-sources/{sid}/tables", headers=acme.headers)
        assert [t["name"] for t in tables.json()["items"]] == [f"{database}.people"]
        run = client.post(
            f"/api/v1/data-sources/{sid}/syncs",
            json={"table_name": f"{database}.people", "wait_seconds": 30},
            headers=acme.headers,
        )
        assert run.status_code == 202 and run.json()["status"] == "succeeded" and run.json()["rows"] == 250
        for method, path in [
            ("GET", f"/api/v1/data-sources/{sid}"),
            ("POST", f"/api/v1/data-sources/{sid}/test"),
            ("GET", f"/api/v1/data-sources/{sid}/tables"),
            ("GET", f"/api/v1/data-sources/{sid}/syncs"),
            ("GET", f"/api/v1/data-sources/syncs/{run.json()['run_id']}"),
        ]:
            answer = client.request(method, path, headers=globex.headers)
            assert answer.status_code == 404, (method, path, answer.text)
            assert answer.json()["code"] == "not_found"
        without_config = client.post(
            "/api/v1/data-sources", json={"name": "bare", "kind": "mysql"}, headers=acme.headers
        )
        assert without_config.status_code == 400 and without_config.json()["code"] == "invalid_input"


def test_a_sync_of_a_mysql_connection_runs_through_the_run_model(
    services: Services, acme: Principal, database: str
) -> None:
    created = cx.connect_source(services, acme, kind="mysql", name="shop", config=_config(database))
    run = syncs.sync_table_to_bronze(
        services, acme, created.id, f"{database}.people", sync_mode="incremental_merge", wait_seconds=60
    )
    assert (run.status, run.rows) == ("succeeded", 250), run.error
    execute(database, "UPDATE people SET name = 'changed', updated_at = '2030-01-01' WHERE id <= 3")
    again = syncs.sync_table_to_bronze(
        services, acme, created.id, f"{database}.people", sync_mode="incremental_merge", wait_seconds=60
    )
    assert (again.status, again.rows) == ("succeeded", 3), again.error
