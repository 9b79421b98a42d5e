"""Model Serving on the Databricks engine, against the fake workspace through the unmodified SDK:
endpoints created, read, queried in every wire shape and deleted; an agent whose model is a
Foundation Model endpoint answers by querying a table on the workspace's warehouse."""

from __future__ import annotations

import pyarrow as pa
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.serving import (
    ChatMessage,
    ChatMessageRole,
    DataframeSplitInput,
    EndpointCoreConfigInput,
    EndpointStateReady,
    ServedEntityInput,
)

from servicetsunami.errors import NotFound
from servicetsunami.llm.base import LLMUnavailable
from servicetsunami.llm.chat import ToolSpec
from servicetsunami.services.container import Services
from servicetsunami.services.serving import agents, endpoints
from servicetsunami.services.serving.databricks import DatabricksEndpointChat
from servicetsunami.services.serving.loop import resolve_model
from servicetsunami.settings import DatabricksSettings
from servicetsunami.tenancy import TableRef
from tests.fakes.databricks.server import FakeDatabricks
from tests.fakes.llm import Scripted
from tests.helpers import make_principal

FOUNDATION = "databricks-meta-llama-3-3-70b-instruct"


def sdk(settings: DatabricksSettings) -> WorkspaceClient:
    assert settings.token is not None
    return WorkspaceClient(host=settings.host, token=settings.token.get_secret_value(), auth_type="pat")


def test_the_sdk_creates_gets_queries_and_deletes_endpoints_on_the_fake(
    fake_workspace: DatabricksSettings, databricks_fake: FakeDatabricks
) -> None:
    w = sdk(fake_workspace)
    entity = ServedEntityInput(entity_name="main.models.support_bot", entity_version="3", workload_size="Small")
    created = w.serving_endpoints.create(
        name="support", config=EndpointCoreConfigInput(name="support", served_entities=[entity])
    )
    assert created.response.state is not None and created.response.state.ready == EndpointStateReady.NOT_READY
    ready = created.result()  # the SDK's own waiter polls get until READY
    assert ready.state is not None and ready.state.ready == EndpointStateReady.READY
    served = ready.config.served_entities if ready.config else None
    assert served is not None and served[0].entity_name == "main.models.support_bot"
    assert [e.name for e in w.serving_endpoints.list()] == ["support"]

    state = databricks_fake.state(fake_workspace.token.get_secret_value())  # type: ignore[union-attr]
    state.serving.script = [Scripted(text="hello"), Scripted(text="a"), Scripted(text="b")]
    chat = w.serving_endpoints.query("support", messages=[ChatMessage(role=ChatMessageRole.USER, content="hi")])
    assert chat.choices is not None and chat.choices[0].message is not None
    assert chat.choices[0].message.content == "hello"
    split = w.serving_endpoints.query(
        "support", dataframe_split=DataframeSplitInput(columns=["prompt"], data=[["x"], ["y"]])
    )
    assert split.predictions == ["a", "b"]
    records = w.serving_endpoints.query("support", dataframe_records=[{"question": "z"}])
    assert records.predictions == ["ok"]
    w.serving_endpoints.delete("support")
    assert list(w.serving_endpoints.list()) == []


def test_an_agent_on_databricks_uses_a_foundation_model_endpoint_and_queries_the_warehouse(
    on_databricks: Services, fake_workspace: DatabricksSettings, databricks_fake: FakeDatabricks
) -> None:
    svc = on_databricks
    acme, _ = make_principal(svc, "acme", role="engineer")
    orders = pa.table({"id": [1, 2, 3, 4], "amount": [5.0, 6.0, 7.0, 8.0]})
    svc.engine.write_table(TableRef(acme.catalog, "silver", "orders"), orders.to_reader(), mode="create")
    agents.create_agent(svc, acme, "analyst", model=f"endpoint:{FOUNDATION}")

    waiting = endpoints.deploy_agent(svc, acme, "analyst", "analyst-ep")
    assert waiting.state == "FAILED" and "does not exist" in (waiting.error or "")

    serving = getattr(svc.engine, "serving")  # noqa: B009  # the Databricks engine's Model Serving
    serving.create(FOUNDATION, entity_name="system.ai.meta_llama_v3_3_70b_instruct", entity_version="1")
    not_yet = endpoints.deploy_agent(svc, acme, "analyst", "analyst-ep")
    assert not_yet.state == "FAILED" and "not READY" in (not_yet.error or "")
    deployed = endpoints.deploy_agent(svc, acme, "analyst", "analyst-ep")
    assert deployed.state == "READY", deployed.error

    state = databricks_fake.state(fake_workspace.token.get_secret_value())  # type: ignore[union-attr]
    state.serving.script = [
        Scripted(tool_calls=[("query_sql", {"sql": "SELECT count(*) AS n, sum(amount) AS total FROM silver.orders"})]),
        Scripted(text="4 orders, 26.0 in all."),
    ]
    answer = endpoints.invoke_endpoint(svc, acme, "analyst-ep", {"input": "How many orders and how much?"})
    output = answer["output"]
    assert [i["type"] for i in output] == ["function_call", "function_call_output", "message"]
    assert '"rows": [[4, 26.0]]' in output[1]["output"]
    assert output[2]["content"][0]["text"] == "4 orders, 26.0 in all."
    asked = state.serving.queries[-2]
    assert asked["tools"][0]["function"]["name"] == "query_sql" and asked["messages"][0]["role"] == "system"

    model = resolve_model(svc, f"endpoint:{FOUNDATION}")
    assert isinstance(model, DatabricksEndpointChat)
    serving.delete(FOUNDATION)
    with pytest.raises(LLMUnavailable):  # the port's signal; the loop turns it into model_unavailable
        model.chat([{"role": "user", "content": "x"}], tools=[], max_tokens=64)
    with pytest.raises(NotFound):
        serving.get(FOUNDATION)
    assert serving.list() == []


def test_an_agent_s_foundation_model_endpoint_streams_its_answer_piece_by_piece(
    on_databricks: Services, fake_workspace: DatabricksSettings, databricks_fake: FakeDatabricks
) -> None:
    serving = getattr(on_databricks.engine, "serving")  # noqa: B009  # the Databricks engine's Model Serving
    serving.create(FOUNDATION, entity_name="system.ai.meta_llama_v3_3_70b_instruct", entity_version="1")
    assert serving.ready(FOUNDATION) or serving.ready(FOUNDATION)  # READY from the second look on
    state = databricks_fake.state(fake_workspace.token.get_secret_value())  # type: ignore[union-attr]
    state.serving.script = [Scripted(text="four orders in all", tool_calls=[("query_sql", {"sql": "SELECT 1"})])]
    model = resolve_model(on_databricks, f"endpoint:{FOUNDATION}")
    assert isinstance(model, DatabricksEndpointChat)
    pieces: list[str] = []
    sql = ToolSpec("query_sql", "Run SQL", {"type": "object", "properties": {"sql": {"type": "string"}}})
    reply = model.chat([{"role": "user", "content": "how many?"}], tools=[sql], max_tokens=64, on_text=pieces.append)
    assert pieces == ["four", " orders", " in", " all"] and reply.text == "four orders in all"
    assert [(c.name, c.arguments) for c in reply.tool_calls] == [("query_sql", '{"sql": "SELECT 1"}')]
    assert state.serving.queries[-1]["stream"] is True
    serving.delete(FOUNDATION)
    with pytest.raises(LLMUnavailable):
        model.chat([{"role": "user", "content": "x"}], tools=[sql], max_tokens=64, on_text=pieces.append)
