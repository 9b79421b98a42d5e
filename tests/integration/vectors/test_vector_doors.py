"""Vector indexes through every door: a real MCP client, the REST app, and the `tsunami vectors` CLI."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from servicetsunami.api.app import create_app
from servicetsunami.cli import app as cli_app
from servicetsunami.services.container import Services
from tests.helpers import make_principal
from tests.integration.api.support import login
from tests.integration.mcp.support import error_code, local_client
from tests.integration.vectors.conftest import write_source
from tests.integration.vectors.test_indexes import DOCS

KEY_RE = re.compile(r"tsk_[0-9a-f]{8}_[A-Za-z0-9_\-]+")


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services.settings, services=services)) as c:
        yield c


async def test_mcp_tools_build_search_sync_and_delete_an_index(services: Services) -> None:
    engineer, key = make_principal(services, "acme", role="engineer")
    write_source(services, engineer, "tickets", DOCS)
    async with local_client(services, key) as client:
        made = await client.call_tool(
            "create_vector_index",
            {
                "name": "tickets_idx",
                "source_table": "tickets",
                "primary_key": "id",
                "text_column": "body",
                "columns_to_sync": ["topic"],
                "wait_seconds": 90,
            },
        )
        assert made.structured_content is not None
        assert made.structured_content["index"]["state"] == "ready"
        found = await client.call_tool(
            "search_vectors",
            {"index": "tickets_idx", "query_text": "walk the dog", "k": 2, "filters": {"topic": "pets"}},
        )
        body = found.structured_content
        assert body is not None and body["rows"][0][0] == 6 and body["columns"] == ["id", "body", "topic"]
        hybrid = await client.call_tool(
            "search_vectors", {"index": "tickets_idx", "query_text": "overdue invoice", "query_type": "hybrid"}
        )
        assert hybrid.structured_content["rows"][0][0] == 1  # type: ignore[index]
        synced = await client.call_tool("sync_vector_index", {"index": "tickets_idx", "wait_seconds": 90})
        assert synced.structured_content["index"]["last_sync"]["embedded"] == 0  # type: ignore[index]
        listed = await client.call_tool("list_vector_indexes", {})
        assert [i["name"] for i in listed.structured_content["indexes"]] == ["tickets_idx"]  # type: ignore[index]
        described = await client.call_tool("describe_vector_index", {"index": "gold.tickets_idx"})
        assert described.structured_content["row_count"] == 6  # type: ignore[index]
        missing = await client.call_tool("search_vectors", {"index": "nope", "query_text": "x"}, raise_on_error=False)
        assert error_code(missing) == "not_found"
        await client.call_tool("delete_vector_index", {"index": "tickets_idx"})
        gone = await client.call_tool("describe_vector_index", {"index": "tickets_idx"}, raise_on_error=False)
        assert error_code(gone) == "not_found"


async def test_an_analyst_sees_the_search_tools_but_not_the_building_ones(services: Services) -> None:
    engineer, _ = make_principal(services, "acme", role="engineer")
    write_source(services, engineer, "tickets", DOCS)
    _, key = make_principal(services, "acme", role="analyst")
    async with local_client(services, key) as client:
        names = {tool.name for tool in await client.list_tools()}
        assert {"search_vectors", "describe_vector_index", "list_vector_indexes"} <= names
        assert not names & {"create_vector_index", "sync_vector_index", "delete_vector_index"}
        refused = await client.call_tool_mcp(
            "create_vector_index", {"name": "x", "source_table": "tickets", "primary_key": "id", "text_column": "body"}
        )
        assert error_code(refused) == "permission_denied"


def test_rest_creates_searches_syncs_and_deletes_an_index_within_the_tenant(
    client: TestClient, services: Services
) -> None:
    acme = login(client, services, "acme")
    globex = login(client, services, "globex")
    write_source(services, make_principal(services, "acme")[0], "tickets", DOCS)
    base = "/api/v1/vector-indexes"
    made = client.post(
        base,
        json={
            "name": "tickets_idx",
            "source_table": "tickets",
            "primary_key": "id",
            "text_column": "body",
            "columns_to_sync": ["topic", "year"],
            "wait_seconds": 90,
        },
        headers=acme.headers,
    )
    assert made.status_code == 202, made.text
    index_id = made.json()["index"]["index_id"]
    assert made.json()["index"]["state"] == "ready"
    query = {"query_text": "database disk full", "k": 3, "filters": {"year <=": 2024}}
    found = client.post(f"{base}/tickets_idx/query", json=query, headers=acme.headers)
    assert found.status_code == 200, found.text
    assert found.json()["rows"][0][0] == 3 and len(found.json()["scores"]) == len(found.json()["rows"])
    for ref in ("tickets_idx", index_id):
        assert client.post(f"{base}/{ref}/query", json=query, headers=globex.headers).status_code == 404
        assert client.get(f"{base}/{ref}", headers=globex.headers).status_code == 404
        assert client.delete(f"{base}/{ref}", headers=globex.headers).status_code == 404
    assert client.get(base, headers=globex.headers).json()["indexes"] == []
    bad = client.post(
        f"{base}/tickets_idx/query", json={"query_text": "x", "filters": {"nope": 1}}, headers=acme.headers
    )
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_input")
    synced = client.post(f"{base}/tickets_idx/sync", json={"wait_seconds": 60}, headers=acme.headers)
    assert synced.status_code == 202 and synced.json()["run_id"]
    assert client.get(f"{base}/{index_id}", headers=acme.headers).json()["row_count"] == 6
    assert client.get(base, headers=acme.headers).json()["indexes"][0]["name"] == "tickets_idx"
    assert client.delete(f"{base}/tickets_idx", headers=acme.headers).status_code == 200
    assert client.get(f"{base}/tickets_idx", headers=acme.headers).status_code == 404


def test_the_cli_creates_searches_lists_and_deletes_an_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSUNAMI_HOME", str(tmp_path / "home"))
    for name in ("TSUNAMI_API_KEY", "TSUNAMI_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    key = KEY_RE.search(runner.invoke(cli_app, ["tenants", "create", "acme"]).output)
    assert key is not None
    env = {"TSUNAMI_API_KEY": key.group(0)}
    csv = tmp_path / "docs.csv"
    csv.write_text("id,body,topic\n" + "".join(f"{d['id']},{d['body']},{d['topic']}\n" for d in DOCS))
    assert runner.invoke(cli_app, ["upload", str(csv), "--dataset", "docs"], env=env).exit_code == 0
    made = runner.invoke(
        cli_app,
        [
            "vectors",
            "create",
            "docs_idx",
            "--source",
            "bronze.docs",
            "--key",
            "id",
            "--text",
            "body",
            "-c",
            "topic",
            "--wait",
        ],
        env=env,
    )
    assert made.exit_code == 0, made.output
    found = runner.invoke(
        cli_app, ["vectors", "search", "docs_idx", "dog walk in the park", "-k", "2", "--json"], env=env
    )
    assert found.exit_code == 0, found.output
    assert json.loads(found.output)["rows"][0][0] == 6
    shown = runner.invoke(
        cli_app, ["vectors", "search", "docs_idx", "invoice", "--hybrid", "--filters", '{"topic": "billing"}'], env=env
    )
    assert shown.exit_code == 0 and "billing" in shown.output
    assert "docs_idx" in runner.invoke(cli_app, ["vectors", "list"], env=env).output
    synced = runner.invoke(cli_app, ["vectors", "sync", "docs_idx", "--wait"], env=env)
    assert synced.exit_code == 0, synced.output
    described = runner.invoke(cli_app, ["vectors", "describe", "docs_idx"], env=env)
    assert json.loads(described.output)["row_count"] == 6
    bad = runner.invoke(cli_app, ["vectors", "search", "docs_idx", "x", "--filters", "{nope"], env=env)
    assert bad.exit_code != 0
    assert runner.invoke(cli_app, ["vectors", "delete", "docs_idx"], env=env).exit_code == 0
    assert runner.invoke(cli_app, ["vectors", "describe", "docs_idx"], env=env).exit_code != 0
