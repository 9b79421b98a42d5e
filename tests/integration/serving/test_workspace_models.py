"""Databricks Model Serving endpoints through the service's doors, against the fake workspace (the
unmodified SDK underneath): deployed as a run until READY, invoked through the service (the request
is forwarded, usage counted), deleted on the workspace too; scoped to the tenant; refused elsewhere."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from servicetsunami.api.app import create_app
from servicetsunami.cli import app
from servicetsunami.errors import InvalidInput, NotSupported
from servicetsunami.services.container import Services
from servicetsunami.services.serving import endpoints, workspace
from servicetsunami.settings import DatabricksSettings
from tests.fakes.databricks.server import FakeDatabricks
from tests.fakes.llm import Scripted
from tests.helpers import make_principal
from tests.integration.mcp.support import error_code, local_client


@pytest.fixture
def client(on_databricks: Services) -> Iterator[TestClient]:
    with TestClient(create_app(on_databricks.settings, services=on_databricks)) as test_client:
        yield test_client


def workspace_state(fake: FakeDatabricks, settings: DatabricksSettings):  # type: ignore[no-untyped-def]
    assert settings.token is not None
    return fake.state(settings.token.get_secret_value()).serving


def test_a_model_endpoint_is_created_on_the_workspace_served_through_the_service_and_deleted(
    on_databricks: Services, fake_workspace: DatabricksSettings, databricks_fake: FakeDatabricks
) -> None:
    svc = on_databricks
    acme, _ = make_principal(svc, "acme", role="engineer")
    deployed = workspace.deploy_workspace_model(
        svc, acme, "support", entity_name=f"{acme.catalog}.models.support_bot", entity_version="3"
    )
    assert deployed.state == "READY" and deployed.kind == "model"
    remote = workspace_state(databricks_fake, fake_workspace)
    held = remote.endpoints[f"{acme.catalog}-support"]
    assert held["config"]["served_entities"][0]["entity_name"] == f"{acme.catalog}.models.support_bot"

    remote.script = [Scripted(text="hello", input_tokens=7, output_tokens=2)]
    answer = endpoints.invoke_endpoint(svc, acme, "support", {"messages": [{"role": "user", "content": "hi"}]})
    assert answer["choices"][0]["message"]["content"] == "hello"
    assert remote.queries[-1] == {"messages": [{"role": "user", "content": "hi"}]}
    usage = endpoints.get_endpoint(svc, acme, "support").usage
    assert (usage.requests, usage.input_tokens, usage.output_tokens) == (1, 7, 2)

    with pytest.raises(NotSupported):
        endpoints.invoke_endpoint(
            svc, acme, "support", {"messages": [{"role": "user", "content": "hi"}], "stream": True}
        )
    endpoints.delete_endpoint(svc, acme, "support")
    assert f"{acme.catalog}-support" not in remote.endpoints


def test_a_model_outside_the_tenant_s_catalog_is_refused_and_another_tenant_sees_nothing(
    on_databricks: Services,
) -> None:
    svc = on_databricks
    acme, _ = make_principal(svc, "acme", role="engineer")
    globex, _ = make_principal(svc, "globex", role="engineer")
    with pytest.raises(InvalidInput):
        workspace.deploy_workspace_model(svc, acme, "theirs", entity_name=f"{globex.catalog}.models.bot")
    with pytest.raises(InvalidInput):
        workspace.deploy_workspace_model(svc, acme, "bad", entity_name="bot")
    made = workspace.deploy_workspace_model(
        svc, acme, "llama", entity_name="system.ai.llama_v3_2_3b", entity_version="1"
    )
    assert made.state == "READY"
    assert endpoints.list_endpoints(svc, globex).endpoints == []


def test_the_rest_and_mcp_doors_deploy_a_workspace_model(on_databricks: Services, client: TestClient) -> None:
    svc = on_databricks
    acme, key = make_principal(svc, "acme", role="engineer")
    headers = {"Authorization": f"Bearer {key}"}
    body = {"name": "rest-ep", "entity_name": f"{acme.catalog}.models.bot", "entity_version": "2"}
    response = client.post("/api/v1/serving-endpoints/workspace-models", json=body, headers=headers)
    assert response.status_code == 202, response.text
    assert response.json()["state"] == "READY" and response.json()["kind"] == "model"
    refused = client.post(
        "/api/v1/serving-endpoints/workspace-models", json=body | {"name": "x", "entity_version": "v2"}, headers=headers
    )
    assert refused.status_code == 400 and refused.json()["code"] == "invalid_input"


async def test_the_mcp_door_deploys_a_workspace_model(on_databricks: Services) -> None:
    acme, key = make_principal(on_databricks, "acme", role="engineer")
    async with local_client(on_databricks, key) as mcp:
        made = await mcp.call_tool(
            "deploy_workspace_model", {"name": "mcp-ep", "entity_name": f"{acme.catalog}.models.bot"}
        )
        assert made.structured_content["state"] == "READY"  # type: ignore[index]
        again = await mcp.call_tool_mcp(
            "deploy_workspace_model", {"name": "mcp-ep", "entity_name": f"{acme.catalog}.models.bot"}
        )
        assert error_code(again) == "conflict"


async def test_without_the_databricks_engine_deploying_a_workspace_model_is_not_supported(
    services: Services,
) -> None:
    acme, key = make_principal(services, "acme", role="engineer")
    async with local_client(services, key) as mcp:
        refused = await mcp.call_tool_mcp(
            "deploy_workspace_model", {"name": "x", "entity_name": f"{acme.catalog}.models.bot"}
        )
        assert error_code(refused) == "not_supported"


def test_the_cli_deploys_a_workspace_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_workspace: DatabricksSettings
) -> None:
    assert fake_workspace.token is not None
    monkeypatch.setenv("TSUNAMI_HOME", str(tmp_path / "cli-home"))
    monkeypatch.setenv("TSUNAMI_ENGINE", "databricks")
    monkeypatch.setenv("TSUNAMI_DATABRICKS__HOST", fake_workspace.host)
    monkeypatch.setenv("TSUNAMI_DATABRICKS__TOKEN", fake_workspace.token.get_secret_value())
    monkeypatch.setenv("TSUNAMI_DATABRICKS__WAREHOUSE_ID", fake_workspace.warehouse_id)
    monkeypatch.delenv("TSUNAMI_API_KEY", raising=False)
    runner = CliRunner()
    made = runner.invoke(app, ["tenants", "create", "acme"])
    assert made.exit_code == 0, made.output
    match = re.search(r"tsk_[0-9a-f]{8}_[A-Za-z0-9_\-]+", made.output)
    assert match is not None
    env = {"TSUNAMI_API_KEY": match.group(0)}
    args = ["agents", "deploy-model", "cli-ep", "--entity", "system.ai.llama_v3_2_3b", "--version", "1"]
    deployed = runner.invoke(app, args, env=env)
    assert deployed.exit_code == 0, deployed.output
    assert json.loads(deployed.output)["state"] == "READY"
    refused = runner.invoke(app, [*args[:2], "other", "--entity", "elsewhere.models.bot"], env=env)
    assert refused.exit_code != 0
