"""Notebooks published to and pulled from the Databricks workspace (the fake's Workspace API, through
the SDK): each tenant's copies live under its own catalog's folder, and the local engine says it has
no workspace."""

from __future__ import annotations

import base64

from databricks.sdk import WorkspaceClient
from databricks.sdk.service.workspace import ExportFormat, ImportFormat, Language
from fastapi.testclient import TestClient

from servicetsunami.api.app import create_app
from servicetsunami.services.container import Services
from servicetsunami.settings import DatabricksSettings
from tests.helpers import make_principal
from tests.integration.api.support import login
from tests.integration.mcp.support import error_code, local_client

SOURCE = (
    "# Databricks notebook source\nx = 20\n\n# COMMAND ----------\n\n"
    "dbutils.notebook.exit(x + int(dbutils.widgets.get('k')))\n"
)
EDITED = SOURCE.replace("x = 20", "x = 21")


def _sdk(settings: DatabricksSettings) -> WorkspaceClient:
    assert settings.token is not None
    return WorkspaceClient(host=settings.host, token=settings.token.get_secret_value(), auth_type="pat")


async def test_a_notebook_is_published_edited_in_the_workspace_and_pulled_back(
    on_databricks: Services, fake_workspace: DatabricksSettings
) -> None:
    _, key = make_principal(on_databricks, "acme", "engineer")
    sdk = _sdk(fake_workspace)
    async with local_client(on_databricks, key) as client:
        made = await client.call_tool("import_notebook", {"path": "/jobs/daily", "content": SOURCE})
        assert made.structured_content is not None
        published = await client.call_tool("publish_notebook", {"notebook": "/jobs/daily"})
        assert published.structured_content is not None
        where = published.structured_content["workspace_path"]
        assert where == "/Shared/servicetsunami/tenant_acme/jobs/daily"
        assert published.structured_content["version"] == 1
        exported = sdk.workspace.export(where, format=ExportFormat.SOURCE)
        assert base64.b64decode(exported.content or "").decode() == SOURCE
        sdk.workspace.import_(
            where,
            content=base64.b64encode(EDITED.encode()).decode(),
            format=ImportFormat.SOURCE,
            language=Language.PYTHON,
            overwrite=True,
        )
        pulled = await client.call_tool("pull_notebook", {"notebook": made.structured_content["notebook_id"]})
        assert pulled.structured_content is not None and pulled.structured_content["version"] == 2
        again = await client.call_tool("export_notebook", {"notebook": "/jobs/daily"})
        assert again.structured_content is not None and again.structured_content["content"] == EDITED


async def test_another_tenant_reaches_only_its_own_workspace_folder(
    on_databricks: Services, fake_workspace: DatabricksSettings
) -> None:
    _, acme = make_principal(on_databricks, "acme", "engineer")
    _, globex = make_principal(on_databricks, "globex", "engineer")
    async with local_client(on_databricks, acme) as client:
        await client.call_tool("import_notebook", {"path": "/jobs/daily", "content": SOURCE})
        await client.call_tool("publish_notebook", {"notebook": "/jobs/daily"})
    async with local_client(on_databricks, globex) as client:
        await client.call_tool(
            "import_notebook", {"path": "/jobs/daily", "content": "# Databricks notebook source\n1\n"}
        )
        pulled = await client.call_tool_mcp("pull_notebook", {"notebook": "/jobs/daily"})
        assert error_code(pulled) == "not_found"  # globex's copy was never published; acme's is not reachable
        mine = await client.call_tool_mcp("publish_notebook", {"notebook": "/jobs/daily"})
        assert not mine.is_error
    listed = {o.path for o in _sdk(fake_workspace).workspace.list("/Shared/servicetsunami")}
    assert listed == {"/Shared/servicetsunami/tenant_acme", "/Shared/servicetsunami/tenant_globex"}


async def test_the_local_engine_has_no_workspace_to_publish_to(services: Services) -> None:
    _, key = make_principal(services, "acme", "engineer")
    async with local_client(services, key) as client:
        await client.call_tool("import_notebook", {"path": "/jobs/daily", "content": SOURCE})
        for tool in ("publish_notebook", "pull_notebook"):
            refused = await client.call_tool_mcp(tool, {"notebook": "/jobs/daily"})
            assert error_code(refused) == "not_supported", tool


def test_rest_publishes_and_pulls_a_notebook(on_databricks: Services) -> None:
    with TestClient(create_app(on_databricks.settings, services=on_databricks)) as client:
        acme = login(client, on_databricks, "acme", role="engineer")
        made = client.post("/api/v1/notebooks/import", json={"path": "/r/n", "content": SOURCE}, headers=acme.headers)
        assert made.status_code == 201, made.text
        notebook_id = made.json()["notebook_id"]
        published = client.post(f"/api/v1/notebooks/{notebook_id}/publish", headers=acme.headers)
        assert published.status_code == 200, published.text
        assert published.json()["workspace_path"] == "/Shared/servicetsunami/tenant_acme/r/n"
        pulled = client.post(f"/api/v1/notebooks/{notebook_id}/pull", headers=acme.headers)
        assert (pulled.status_code, pulled.json()["version"]) == (200, 2)
        analyst = login(client, on_databricks, "acme", role="analyst")
        assert client.post(f"/api/v1/notebooks/{notebook_id}/publish", headers=analyst.headers).status_code == 403
