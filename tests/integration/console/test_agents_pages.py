"""The console's agent pages over the ASGI app, with the scripted model on loopback: deploy an agent,
its endpoint's state and URL, and "Test endpoint" answering through the agent's SQL tool."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from servicetsunami.services.container import Services
from servicetsunami.services.serving import agents, endpoints
from servicetsunami.settings import AISettings, Settings
from servicetsunami.tenancy import Principal
from tests.fakes.llm import FakeLLM, Scripted, running_fake_llm
from tests.helpers import make_principal
from tests.integration.console.conftest import csrf_of, sign_in_as
from tests.integration.serving.conftest import add_orders

KEY = "sk-fake-console"
DEADLINE = 60.0


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[FakeLLM]:
    with running_fake_llm() as fake:
        yield fake


@pytest.fixture
def llm(fake_llm: FakeLLM) -> FakeLLM:
    fake_llm.reset(KEY)
    return fake_llm


@pytest.fixture
def settings(tmp_path: Path, llm: FakeLLM) -> Settings:
    ai = AISettings(provider="openai", model="fake-model", api_key=KEY, base_url=llm.base_url("openai"))  # type: ignore[arg-type]  # pydantic turns str into SecretStr
    return Settings(home=tmp_path / "home", ai=ai, _env_file=None)  # type: ignore[call-arg]  # pydantic-settings option


def _agent(services: Services) -> Principal:
    owner = make_principal(services, "acme", role="engineer")[0]
    add_orders(services, owner)
    agents.create_agent(services, owner, "analyst", instructions="Answer from the orders table.")
    return owner


def _wait_ready(services: Services, owner: Principal, name: str) -> None:
    end = time.monotonic() + DEADLINE
    while endpoints.get_endpoint(services, owner, name).state == "NOT_READY":
        assert time.monotonic() < end, "the endpoint did not leave NOT_READY"
        services.launcher.wait_change(0.1)


def test_an_agent_is_deployed_and_tested_from_its_endpoints_page(
    client: TestClient, services: Services, llm: FakeLLM
) -> None:
    owner = _agent(services)
    sign_in_as(client, services, "acme", role="engineer")
    assert "analyst" in client.get("/agents").text
    page = client.get("/agents/analyst").text
    deployed = client.post("/agents/analyst/deploy", data={"csrf_token": csrf_of(page), "endpoint": "orders-bot"})
    assert deployed.status_code == 303 and deployed.headers["location"] == "/endpoints/orders-bot"
    _wait_ready(services, owner, "orders-bot")
    shown = client.get("/endpoints/orders-bot").text
    assert 'data-state="READY"' in shown and "/serving-endpoints/orders-bot/invocations" in shown
    llm.script = [
        Scripted(tool_calls=[("query_sql", {"sql": "SELECT COUNT(*) AS n FROM silver.orders"})]),
        Scripted(text="There are 3 orders."),
    ]
    reply = client.post(
        "/endpoints/orders-bot/test",
        data={"message": "How many orders?"},
        headers={"HX-Request": "true", "X-CSRF-Token": csrf_of(shown)},
    )
    assert reply.status_code == 200, reply.text
    assert "How many orders?" in reply.text and "There are 3 orders." in reply.text
    assert "<html" not in reply.text
    assert "Requests</dt><dd>1" in client.get("/endpoints/orders-bot").text


def test_an_analyst_may_test_an_endpoint_but_not_deploy(client: TestClient, services: Services, llm: FakeLLM) -> None:
    owner = _agent(services)
    sign_in_as(client, services, "acme", role="analyst")  # before the deployment: its writes would compete
    endpoints.deploy_agent(services, owner, "analyst", "orders-bot", wait_seconds=0.0)
    _wait_ready(services, owner, "orders-bot")
    page = client.get("/agents/analyst").text
    assert "Deploy</button>" not in page
    refused = client.post("/agents/analyst/deploy", data={"csrf_token": csrf_of(page), "endpoint": "other"})
    assert refused.status_code == 403
    llm.script = [Scripted(text="Hello.")]
    shown = client.get("/endpoints/orders-bot").text
    reply = client.post("/endpoints/orders-bot/test", data={"message": "hi", "csrf_token": csrf_of(shown)})
    assert reply.status_code == 200 and "Hello." in reply.text


def test_another_tenants_agent_and_endpoint_are_not_found(client: TestClient, services: Services) -> None:
    _agent(services)
    sign_in_as(client, services, "globex", role="engineer")
    assert client.get("/agents/analyst").status_code == 404
    page = client.get("/agents").text
    assert "No agents yet" in page
    reply = client.post("/endpoints/orders-bot/test", data={"message": "hi", "csrf_token": csrf_of(page)})
    assert reply.status_code == 404
