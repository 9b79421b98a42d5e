"""Serving endpoints and chat over REST and the WebSocket, through the real ASGI app: deploy as a
run, each Databricks input shape, streaming, usage, rate limits, tenant isolation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from servicetsunami.api.app import create_app
from servicetsunami.services.container import Services
from servicetsunami.tenancy import Principal
from tests.fakes.llm import FakeLLM, Scripted
from tests.helpers import make_principal
from tests.integration.serving.conftest import add_orders

SQL_CALL = ("query_sql", {"sql": "SELECT count(*) AS n FROM silver.orders"})


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services.settings, services=services)) as c:
        yield c


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def deploy(client: TestClient, key: str, name: str = "sales-ep", **extra: Any) -> dict[str, Any]:
    made = client.post(
        "/api/v1/agents", json={"name": "sales", "instructions": "Answer about sales."}, headers=auth(key)
    )
    assert made.status_code in (201, 409), made.text
    body = {"name": name, "wait_seconds": 30, **extra}
    deployed = client.post("/api/v1/agents/sales/deploy", json=body, headers=auth(key))
    assert deployed.status_code == 202, deployed.text
    out: dict[str, Any] = deployed.json()
    return out


def sse_events(text: str) -> list[Any]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ") and line != "data: [DONE]"]


def test_an_agent_deploys_to_a_ready_endpoint_and_answers_every_input_shape(
    client: TestClient, acme_key: tuple[Principal, str], llm: FakeLLM
) -> None:
    _, key = acme_key
    endpoint = deploy(client, key)
    assert endpoint["state"] == "READY" and endpoint["url"].endswith("/serving-endpoints/sales-ep/invocations")
    url = "/serving-endpoints/sales-ep/invocations"

    llm.script = [Scripted(tool_calls=[SQL_CALL]), Scripted(text="There are 3 orders.")]
    chat = client.post(url, json={"messages": [{"role": "user", "content": "how many?"}]}, headers=auth(key))
    assert chat.status_code == 200, chat.text
    assert chat.json()["object"] == "chat.completion"
    assert chat.json()["choices"][0]["message"]["content"] == "There are 3 orders."
    assert chat.json()["usage"]["total_tokens"] == 30

    llm.script = [Scripted(tool_calls=[SQL_CALL]), Scripted(text="Three.")]
    responses = client.post(f"/api/v1{url}", json={"input": [{"role": "user", "content": "n?"}]}, headers=auth(key))
    output = responses.json()["output"]
    assert [item["type"] for item in output] == ["function_call", "function_call_output", "message"]
    assert json.loads(output[1]["output"])["data"]["rows"] == [[3]]
    assert output[2]["content"][0]["text"] == "Three."

    llm.script = [Scripted(text="a"), Scripted(text="b")]
    records = client.post(url, json={"dataframe_records": [{"prompt": "x"}, {"question": "y"}]}, headers=auth(key))
    assert records.json() == {"predictions": ["a", "b"]}
    llm.script = [Scripted(text="c")]
    split = client.post(url, json={"dataframe_split": {"columns": ["input"], "data": [["z"]]}}, headers=auth(key))
    assert split.json() == {"predictions": ["c"]}
    llm.script = [Scripted(text="d")]
    instances = client.post(url, json={"instances": ["w"]}, headers=auth(key))
    assert instances.json() == {"predictions": ["d"]}

    got = client.get("/api/v1/serving-endpoints/sales-ep", headers=auth(key)).json()
    assert got["usage"]["requests"] == 5 and got["usage"]["errors"] == 0
    assert got["usage"]["latency_ms"]["p50"] is not None and got["usage"]["input_tokens"] > 0
    runs = client.get("/api/v1/runs", params={"kind": "agent_invocation"}, headers=auth(key)).json()
    traced = [r for r in runs["items"] if r["result"] and r["result"]["tool_calls"]]
    assert len(traced) == 2 and traced[0]["result"]["tool_calls"][0]["tool"] == "query_sql"


def test_streaming_answers_with_server_sent_events_in_both_shapes(
    client: TestClient, acme_key: tuple[Principal, str], llm: FakeLLM
) -> None:
    _, key = acme_key
    deploy(client, key)
    url = "/serving-endpoints/sales-ep/invocations"
    llm.script = [Scripted(tool_calls=[SQL_CALL]), Scripted(text="There are three orders.")]
    body = {"messages": [{"role": "user", "content": "how many?"}], "stream": True}
    with client.stream("POST", url, json=body, headers=auth(key)) as streamed:
        assert streamed.headers["content-type"].startswith("text/event-stream"), streamed.read()
        text = streamed.read().decode()
    assert text.rstrip().endswith("data: [DONE]")
    chunks = sse_events(text)
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "There are three orders."
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["usage"]["completion_tokens"] == 10

    llm.script = [Scripted(tool_calls=[SQL_CALL]), Scripted(text="Three orders.")]
    body = {"input": "how many?", "stream": True}
    events = sse_events(client.post(url, json=body, headers=auth(key)).text)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "response.output_item.done" and events[0]["item"]["type"] == "function_call"
    assert events[1]["item"]["type"] == "function_call_output"
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == "Three orders."
    assert kinds[-1] == "response.completed"

    llm.status = 503
    events = sse_events(client.post(url, json=body, headers=auth(key)).text)
    assert events == [{"error": {"code": "model_unavailable", "message": events[0]["error"]["message"]}}]


def test_bad_requests_are_refused_before_anything_runs(client: TestClient, acme_key: tuple[Principal, str]) -> None:
    _, key = acme_key
    deploy(client, key)
    url = "/serving-endpoints/sales-ep/invocations"
    for body in (
        {},
        {"messages": [], "input": "x"},
        {"messages": [{"role": "assistant", "content": "x"}]},
        {"dataframe_records": [{"prompt": "x"}], "stream": True},
        {"dataframe_split": {"columns": ["a"], "data": [["x", "y"]]}},
        {"instances": [{"nothing": 1}]},
        {"messages": [{"role": "user", "content": [{"type": "image"}]}]},
        {"input": "x", "stream": "yes"},
    ):
        answer = client.post(url, json=body, headers=auth(key))
        assert answer.status_code == 400 and answer.json()["code"] == "invalid_input", body
    not_json = client.post(url, content=b"{", headers=auth(key) | {"content-type": "application/json"})
    assert not_json.json()["code"] == "invalid_input"
    assert client.post(url, json={"input": "x"}).status_code == 401
    missing = client.post("/serving-endpoints/nope/invocations", json={"input": "x"}, headers=auth(key))
    assert missing.status_code == 404


def test_another_tenant_can_neither_see_nor_invoke_an_endpoint(
    client: TestClient, services: Services, acme_key: tuple[Principal, str], llm: FakeLLM
) -> None:
    _, key = acme_key
    endpoint = deploy(client, key)
    _, other = make_principal(services, "globex")
    url = "/serving-endpoints/sales-ep/invocations"
    assert client.post(url, json={"input": "x"}, headers=auth(other)).json()["code"] == "not_found"
    for path in ("/api/v1/serving-endpoints/sales-ep", f"/api/v1/serving-endpoints/{endpoint['endpoint_id']}"):
        assert client.get(path, headers=auth(other)).status_code == 404
    assert client.get("/api/v1/serving-endpoints", headers=auth(other)).json() == {"endpoints": []}
    assert client.get("/api/v1/agents/sales", headers=auth(other)).status_code == 404
    assert client.delete("/api/v1/serving-endpoints/sales-ep", headers=auth(other)).status_code == 404


def test_an_endpoint_has_its_own_rate_limit_per_caller(
    client: TestClient, services: Services, acme_key: tuple[Principal, str]
) -> None:
    _, key = acme_key
    deploy(client, key, rate_limit="2/minute")
    _, second = make_principal(services, "acme", role="analyst")
    url = "/serving-endpoints/sales-ep/invocations"
    assert [client.post(url, json={"input": "x"}, headers=auth(key)).status_code for _ in range(3)] == [200, 200, 429]
    assert client.post(url, json={"input": "x"}, headers=auth(second)).status_code == 200
    bad = client.post("/api/v1/agents/sales/deploy", json={"name": "other", "rate_limit": "lots"}, headers=auth(key))
    assert bad.json()["code"] == "invalid_input"


def test_a_deployment_without_a_model_fails_and_says_why(
    client: TestClient, services: Services, acme_key: tuple[Principal, str]
) -> None:
    _, key = acme_key
    services.settings.ai.provider = "none"
    endpoint = deploy(client, key)
    assert endpoint["state"] == "FAILED" and "TSUNAMI_AI__PROVIDER" in endpoint["error"]
    run = client.get(f"/api/v1/runs/{endpoint['run_id']}", headers=auth(key)).json()
    assert run["state"] == "failed" and run["error_code"] == "model_unavailable"
    refused = client.post("/serving-endpoints/sales-ep/invocations", json={"input": "x"}, headers=auth(key))
    assert refused.status_code == 409 and refused.json()["code"] == "conflict"
    services.settings.ai.provider = "openai"
    redeployed = client.post(
        "/api/v1/serving-endpoints", json={"name": "sales-ep", "agent": "sales"}, headers=auth(key)
    )
    assert redeployed.json()["state"] == "READY"
    assert [e["name"] for e in client.get("/api/v1/serving-endpoints", headers=auth(key)).json()["endpoints"]] == [
        "sales-ep"
    ]
    assert client.delete("/api/v1/serving-endpoints/sales-ep", headers=auth(key)).json()["name"] == "sales-ep"
    assert client.get("/api/v1/serving-endpoints/sales-ep", headers=auth(key)).status_code == 404


def test_agents_over_rest(client: TestClient, acme_key: tuple[Principal, str]) -> None:
    _, key = acme_key
    made = client.post("/api/v1/agents", json={"name": "ops", "tools": ["query_sql"]}, headers=auth(key))
    assert made.status_code == 201 and made.json()["tools"] == ["query_sql"]
    assert client.post("/api/v1/agents", json={"name": "x", "tools": ["shell"]}, headers=auth(key)).status_code == 400
    patched = client.patch("/api/v1/agents/ops", json={"instructions": "Be brief."}, headers=auth(key))
    assert patched.json()["version"] == 2
    assert [a["name"] for a in client.get("/api/v1/agents", headers=auth(key)).json()["agents"]] == ["ops"]
    assert client.get("/api/v1/agents/ops", headers=auth(key)).json()["instructions"] == "Be brief."
    assert client.delete("/api/v1/agents/ops", headers=auth(key)).status_code == 200


def test_a_chat_over_the_websocket_calls_a_sql_tool_and_streams_the_answer(
    client: TestClient, acme_key: tuple[Principal, str], llm: FakeLLM
) -> None:
    _, key = acme_key
    llm.script = [Scripted(tool_calls=[SQL_CALL]), Scripted(text="You have 3 orders.")]
    with client.websocket_connect("/api/v1/chat/ws") as ws:
        ws.send_json({"token": key})
        assert ws.receive_json() == {"type": "ready", "tenant": "acme"}
        ws.send_json({"message": "How many orders do I have?"})
        events = []
        while not events or events[-1]["type"] not in ("done", "error"):
            events.append(ws.receive_json())
        kinds = [e["type"] for e in events]
        assert kinds[:2] == ["tool_call", "tool_result"] and kinds[-1] == "done", events
        assert json.loads(events[1]["content"])["data"]["rows"] == [[3]]
        assert "".join(e["delta"] for e in events if e["type"] == "text") == "You have 3 orders."
        done = events[-1]
        assert done["message"] == "You have 3 orders." and done["tool_calls"][0]["tool"] == "query_sql"

        llm.script = [Scripted(text="Still 3.")]
        ws.send_json({"message": "And now?", "conversation_id": done["conversation_id"]})
        events = []
        while not events or events[-1]["type"] not in ("done", "error"):
            events.append(ws.receive_json())
        assert events[-1]["message"] == "Still 3."
        sent = llm.seen[-1].body["messages"]
        assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "assistant", "user"]
        ws.send_json({"nothing": True})
        assert ws.receive_json()["code"] == "invalid_input"
    conversation = client.get(f"/api/v1/chat/conversations/{done['conversation_id']}", headers=auth(key)).json()
    assert len(conversation["messages"]) == 6


def test_a_websocket_with_a_bad_credential_is_closed(client: TestClient, acme_key: tuple[Principal, str]) -> None:
    with client.websocket_connect("/api/v1/chat/ws", headers={"authorization": "Bearer tsk_bad"}) as ws:
        assert ws.receive_json()["code"] == "unauthenticated"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 1008


def test_chat_message_keeps_the_conversation_per_person_and_tenant(
    client: TestClient, services: Services, acme_key: tuple[Principal, str], llm: FakeLLM
) -> None:
    acme, key = acme_key
    llm.script = [Scripted(text="hello")]
    first = client.post("/api/v1/chat/message", json={"message": "hi"}, headers=auth(key)).json()
    assert first["message"] == "hello" and first["agent"] is None
    _, other = make_principal(services, "globex")
    add_orders(services, make_principal(services, "globex")[0])
    body = {"message": "hi", "conversation_id": first["conversation_id"]}
    assert client.post("/api/v1/chat/message", json=body, headers=auth(other)).status_code == 404
    assert client.post("/api/v1/chat/message", json={"message": " "}, headers=auth(key)).status_code == 400
    made = client.post("/api/v1/agents", json={"name": "helper"}, headers=auth(key))
    assert made.status_code == 201
    body = {"message": "hi", "conversation_id": first["conversation_id"], "agent": "helper"}
    assert client.post("/api/v1/chat/message", json=body, headers=auth(key)).json()["code"] == "invalid_input"
    llm.script = [Scripted(text="from helper")]
    named = client.post("/api/v1/chat/message", json={"message": "hi", "agent": "helper"}, headers=auth(key)).json()
    assert named["agent"] == "helper" and named["message"] == "from helper"
    llm.status = 500
    failed = client.post("/api/v1/chat/message", json={"message": "hi"}, headers=auth(key))
    assert failed.status_code == 503 and failed.json()["code"] == "model_unavailable"
    assert acme.tenant_slug == "acme"
