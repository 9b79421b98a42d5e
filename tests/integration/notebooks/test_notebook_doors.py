"""Notebooks through every door: a real MCP client, the REST app, and the `tsunami notebooks` CLI."""

from __future__ import annotations

import base64
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

pytestmark = pytest.mark.slow
SOURCE = (
    "# Databricks notebook source\nx = 20\n\n# COMMAND ----------\n\n"
    "dbutils.notebook.exit(x + int(dbutils.widgets.get('k')))\n"
)
KEY_RE = re.compile(r"tsk_[0-9a-f]{8}_[A-Za-z0-9_\-]+")


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services.settings, services=services)) as c:
        yield c


async def test_mcp_tools_import_list_export_and_run_a_notebook(services: Services) -> None:
    _, key = make_principal(services, "acme", role="engineer")
    async with local_client(services, key) as client:
        made = await client.call_tool("import_notebook", {"path": "/jobs/daily", "content": SOURCE})
        notebook_id = made.structured_content["notebook_id"]  # type: ignore[index]
        listed = await client.call_tool("list_notebooks", {"folder": "/jobs"})
        assert [n["path"] for n in listed.structured_content["notebooks"]] == ["/jobs/daily"]  # type: ignore[index]
        exported = await client.call_tool("export_notebook", {"notebook": "/jobs/daily"})
        assert exported.structured_content["content"] == SOURCE  # type: ignore[index]
        ran = await client.call_tool(
            "run_notebook", {"notebook": notebook_id, "parameters": {"k": "22"}, "wait_seconds": 90}
        )
        body = ran.structured_content
        assert body is not None
        assert body["run"]["state"] == "succeeded", body["run"]["error"]
        assert body["exit_value"] == "42"
        got = await client.call_tool("get_notebook_run", {"run_id": body["run"]["run_id"]})
        assert got.structured_content["exit_value"] == "42"  # type: ignore[index]
        missing = await client.call_tool("get_notebook", {"notebook": "/nope"}, raise_on_error=False)
        assert error_code(missing) == "not_found"


def test_rest_creates_updates_exports_runs_and_deletes_a_notebook(client: TestClient, services: Services) -> None:
    acme = login(client, services, "acme")
    made = client.post("/api/v1/notebooks/import", json={"path": "/r/n", "content": SOURCE}, headers=acme.headers)
    assert made.status_code == 201, made.text
    notebook_id = made.json()["notebook_id"]
    page = client.get(f"/api/v1/notebooks/{notebook_id}/export", params={"format": "source"}, headers=acme.headers)
    assert (page.status_code, page.text) == (200, SOURCE)
    assert 'filename="n.py"' in page.headers["content-disposition"]
    html = client.get(f"/api/v1/notebooks/{notebook_id}/export", params={"format": "html"}, headers=acme.headers)
    assert html.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in html.headers["content-security-policy"]
    updated = client.patch(
        f"/api/v1/notebooks/{notebook_id}",
        json={"cells": [{"source": "dbutils.notebook.exit('v2')"}], "expected_version": 1},
        headers=acme.headers,
    )
    assert updated.json()["version"] == 2
    stale = client.patch(
        f"/api/v1/notebooks/{notebook_id}", json={"path": "/r/m", "expected_version": 1}, headers=acme.headers
    )
    assert (stale.status_code, stale.json()["code"]) == (409, "conflict")
    started = client.post(f"/api/v1/notebooks/{notebook_id}/runs", json={"wait_seconds": 60}, headers=acme.headers)
    assert started.status_code == 202, started.text
    run_id = started.json()["run"]["run_id"]
    done = client.get(f"/api/v1/notebooks/runs/{run_id}", params={"wait_seconds": 60}, headers=acme.headers).json()
    assert (done["run"]["state"], done["exit_value"]) == ("succeeded", "v2")
    globex = login(client, services, "globex")
    assert client.get(f"/api/v1/notebooks/{notebook_id}", headers=globex.headers).status_code == 404
    assert client.get(f"/api/v1/notebooks/runs/{run_id}", headers=globex.headers).status_code == 404
    assert client.delete(f"/api/v1/notebooks/{notebook_id}", headers=acme.headers).status_code == 204
    assert client.get(f"/api/v1/notebooks/{notebook_id}", headers=acme.headers).status_code == 404


def test_rest_refuses_a_bad_path_with_invalid_input(client: TestClient, services: Services) -> None:
    acme = login(client, services, "acme")
    reply = client.post("/api/v1/notebooks", json={"path": "../x", "cells": []}, headers=acme.headers)
    assert (reply.status_code, reply.json()["code"]) == (400, "invalid_input")


def test_the_cli_imports_runs_with_params_and_exports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSUNAMI_HOME", str(tmp_path / "home"))
    for name in ("TSUNAMI_API_KEY", "TSUNAMI_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    key = KEY_RE.search(runner.invoke(cli_app, ["tenants", "create", "acme"]).output)
    assert key is not None
    env = {"TSUNAMI_API_KEY": key.group(0)}
    source = tmp_path / "daily.py"
    source.write_text(SOURCE)
    imported = runner.invoke(cli_app, ["notebooks", "import", str(source), "--path", "/daily"], env=env)
    assert imported.exit_code == 0, imported.output
    ran = runner.invoke(cli_app, ["notebooks", "run", "/daily", "--param", "k=1", "--wait"], env=env)
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.output[ran.output.index("{") :])["exit_value"] == "21"
    exported = runner.invoke(cli_app, ["notebooks", "export", "/daily"], env=env)
    assert exported.output == SOURCE
    bad = runner.invoke(cli_app, ["notebooks", "run", "/daily", "--param", "novalue"], env=env)
    assert bad.exit_code != 0


async def test_volume_file_tools_stay_inside_the_callers_catalog(services: Services) -> None:
    _, key = make_principal(services, "acme", role="engineer")
    base = "/Volumes/tenant_acme/bronze/landing/docs"
    async with local_client(services, key) as client:
        put = await client.call_tool(
            "upload_volume_file", {"path": f"{base}/a.txt", "content_base64": base64.b64encode(b"hello").decode()}
        )
        assert put.structured_content["bytes"] == 5  # type: ignore[index]
        again = await client.call_tool(
            "upload_volume_file", {"path": f"{base}/a.txt", "content_base64": "aGk="}, raise_on_error=False
        )
        assert error_code(again) == "conflict"
        listed = await client.call_tool("list_dbfs_files", {"path": "/Volumes/tenant_acme/bronze/landing"})
        assert [f["name"] for f in listed.structured_content["files"]] == ["docs/"]  # type: ignore[index]
        got = await client.call_tool("download_volume_file", {"path": f"dbfs:{base}/a.txt"})
        assert base64.b64decode(got.structured_content["content_base64"]) == b"hello"  # type: ignore[index]
        for path in ("/Volumes/tenant_globex/bronze/landing/x.txt", f"{base}/../../../secret", "/etc/passwd"):
            refused = await client.call_tool("download_volume_file", {"path": path}, raise_on_error=False)
            assert error_code(refused) in ("not_found", "invalid_input")
        deleted = await client.call_tool("delete_volume_file", {"path": f"{base}/a.txt"})
        assert deleted.structured_content["deleted"] is True  # type: ignore[index]
