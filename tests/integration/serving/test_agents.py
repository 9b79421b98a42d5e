"""Agents as a service: definitions, the bounded loop over a scripted model, tool calls as the
caller (guard, caps), tool results framed as data, invocations recorded as runs."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from servicetsunami.errors import Conflict, InvalidInput, LimitExceeded, ModelUnavailable, NotFound
from servicetsunami.services.container import Services
from servicetsunami.services.runs import service as runs
from servicetsunami.services.serving import agents, endpoints
from servicetsunami.services.serving.agents import AgentDefinition
from servicetsunami.services.serving.loop import run_agent
from servicetsunami.services.serving.tools import DATA_NOTE, call_tool, toolbox
from servicetsunami.services.vectors import indexes
from servicetsunami.tenancy import Principal, TableRef
from tests.fakes.llm import FakeLLM, Scripted
from tests.helpers import make_principal


def test_an_agent_answers_a_question_by_querying_a_table(
    services: Services, acme_key: tuple[Principal, str], llm: FakeLLM
) -> None:
    acme, _ = acme_key
    llm.script = [
        Scripted(tool_calls=[("query_sql", {"sql": "SELECT sum(amount) AS total FROM silver.orders"})]),
        Scripted(text="The orders add up to 42.5."),
    ]
    events: list[dict[str, object]] = []
    result = run_agent(services, acme, AgentDefinition(), [{"role": "user", "content": "total?"}], emit=events.append)
    assert result.text == "The orders add up to 42.5."
    assert [t["tool"] for t in result.trace] == ["query_sql"] and result.trace[0]["ok"]
    tool_turn = llm.seen[1].body["messages"][-1]
    assert tool_turn["role"] == "tool"
    framed = json.loads(tool_turn["content"])
    assert framed["note"] == DATA_NOTE and framed["data"]["rows"] == [[42.5]]
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["tool_call", "tool_result"] and set(kinds[2:]) == {"text"}  # streamed word by word
    assert "".join(str(e["delta"]) for e in events[2:]) == result.text
    assert llm.seen[0].body["tools"][0]["function"]["name"] == "query_sql"


def test_a_tool_error_goes_back_to_the_model_with_its_code(
    services: Services, acme_key: tuple[Principal, str], llm: FakeLLM
) -> None:
    acme, _ = acme_key
    llm.script = [
        Scripted(tool_calls=[("query_sql", {"sql": "DROP TABLE silver.orders"})]),
        Scripted(tool_calls=[("query_sql", {"sql": "SELECT * FROM tenant_globex.silver.orders"})]),
        Scripted(text="I may not."),
    ]
    result = run_agent(services, acme, AgentDefinition(), [{"role": "user", "content": "drop it"}])
    assert [t["error_code"] for t in result.trace] == ["query_refused", "permission_denied"]
    assert json.loads(llm.seen[1].body["messages"][-1]["content"])["error"]["code"] == "query_refused"


def test_the_loop_stops_at_its_step_bound(services: Services, acme_key: tuple[Principal, str], llm: FakeLLM) -> None:
    acme, _ = acme_key
    services.settings.serving.max_steps = 2
    llm.script = [Scripted(tool_calls=[("list_tables", {})]) for _ in range(3)]
    with pytest.raises(LimitExceeded) as caught:
        run_agent(services, acme, AgentDefinition(), [{"role": "user", "content": "loop"}])
    assert caught.value.details["limit"] == "max_steps"


def test_the_loop_stops_at_its_token_bound(services: Services, acme_key: tuple[Principal, str], llm: FakeLLM) -> None:
    acme, _ = acme_key
    services.settings.serving.max_tokens = 300
    llm.script = [Scripted(text="long", input_tokens=290, output_tokens=20)]
    with pytest.raises(LimitExceeded) as caught:
        run_agent(services, acme, AgentDefinition(), [{"role": "user", "content": "hi"}])
    assert caught.value.details["limit"] == "max_tokens"


def test_list_and_describe_tools_see_only_the_callers_tables(
    services: Services, acme_key: tuple[Principal, str], llm: FakeLLM
) -> None:
    acme, _ = acme_key
    globex, _ = make_principal(services, "globex")
    tools = toolbox(services, globex, AgentDefinition())
    listed = json.loads(call_tool(tools, "list_tables", "{}", max_chars=10_000).content)
    assert listed["data"] == []
    missing = call_tool(tools, "describe_table", json.dumps({"table": "silver.orders"}), max_chars=10_000)
    assert missing.error_code == "not_found"
    mine = toolbox(services, acme, AgentDefinition())
    described = json.loads(call_tool(mine, "describe_table", '{"table": "silver.orders"}', max_chars=10_000).content)
    assert [c["name"] for c in described["data"]["columns"]] == ["id", "region", "amount"]
    assert call_tool(mine, "nope", "{}", max_chars=10_000).error_code == "unknown_tool"
    assert call_tool(mine, "query_sql", "{bad", max_chars=10_000).error_code == "invalid_input"
    assert call_tool(mine, "query_sql", "[1]", max_chars=10_000).error_code == "invalid_input"
    assert call_tool(mine, "query_sql", '{"sql": ""}', max_chars=10_000).error_code == "invalid_input"
    long = call_tool(mine, "query_sql", '{"sql": "SELECT repeat(\'x\', 5000) AS s"}', max_chars=1000)
    assert json.loads(long.content)["truncated"] is True


def test_an_agent_answers_by_searching_a_vector_index_of_its_tenant(
    services: Services, acme_key: tuple[Principal, str], llm: FakeLLM
) -> None:
    acme, _ = acme_key
    faq = pa.table(
        {
            "id": [1, 2, 3],
            "body": [
                "Refunds are paid back within 14 days of the return.",
                "Shipping to Norway takes five working days.",
                "The office cat is called Pixel.",
            ],
        }
    )
    services.engine.write_table(TableRef(acme.catalog, "silver", "faq"), faq.to_reader(), mode="create")
    created = indexes.create_vector_index(
        services, acme, "faq_idx", source_table="silver.faq", primary_key="id", text_column="body"
    )
    assert runs.wait_for_run(services, acme, created.run_id, timeout=120).state == "succeeded"
    tools = toolbox(services, acme, AgentDefinition(tools=[], vector_indexes=["faq_idx"]))
    assert list(tools) == ["search_faq_idx"]
    assert call_tool(tools, "search_faq_idx", '{"query": "x", "k": 0}', max_chars=10_000).error_code == "invalid_input"
    llm.script = [
        Scripted(tool_calls=[("search_faq_idx", {"query": "how long until my refund is paid back", "k": 1})]),
        Scripted(text="Within 14 days."),
    ]
    definition = AgentDefinition(tools=[], vector_indexes=["faq_idx"])
    result = run_agent(services, acme, definition, [{"role": "user", "content": "refund?"}])
    assert result.text == "Within 14 days." and result.trace[0]["ok"]
    found = json.loads(llm.seen[1].body["messages"][-1]["content"])["data"]
    assert len(found["rows"]) == 1 and "Refunds" in json.dumps(found["rows"][0])
    globex, _ = make_principal(services, "globex")  # another tenant's agent does not reach the index
    theirs = toolbox(services, globex, AgentDefinition(tools=[], vector_indexes=["faq_idx"]))
    assert call_tool(theirs, "search_faq_idx", '{"query": "refund"}', max_chars=10_000).error_code == "not_found"


def test_agents_are_created_updated_listed_and_deleted_per_tenant(
    services: Services, acme_key: tuple[Principal, str]
) -> None:
    acme, _ = acme_key
    globex, _ = make_principal(services, "globex")
    made = agents.create_agent(services, acme, "sales", instructions="Answer about sales.", vector_indexes=["docs"])
    assert made.version == 1 and made.tools == ["query_sql", "list_tables", "describe_table"]
    with pytest.raises(Conflict):
        agents.create_agent(services, acme, "sales")
    changed = agents.update_agent(services, acme, "sales", tools=["query_sql"])
    assert changed.version == 2 and changed.instructions == "Answer about sales." and changed.tools == ["query_sql"]
    assert [a.name for a in agents.list_agents(services, acme).agents] == ["sales"]
    assert agents.list_agents(services, globex).agents == []
    with pytest.raises(NotFound):
        agents.get_agent(services, globex, made.agent_id)
    with pytest.raises(NotFound):
        agents.get_agent(services, globex, "sales")
    for bad in ({"tools": ["rm_rf"]}, {"vector_indexes": ["Bad Name"]}, {"model": "endpoint:no good"}):
        with pytest.raises(InvalidInput):
            agents.create_agent(services, acme, "other", **bad)  # type: ignore[arg-type]  # each a keyword of it
    with pytest.raises(InvalidInput):
        agents.create_agent(services, acme, "no spaces please")
    assert agents.delete_agent(services, acme, "sales").name == "sales"
    with pytest.raises(NotFound):
        agents.get_agent(services, acme, "sales")


def test_an_agent_without_a_model_says_how_to_configure_one(services: Services) -> None:
    from servicetsunami.services.serving.loop import resolve_model

    services.settings.ai.provider = "none"
    with pytest.raises(ModelUnavailable) as caught:
        resolve_model(services, "default")
    assert "TSUNAMI_AI__PROVIDER" in caught.value.message
    with pytest.raises(ModelUnavailable):
        resolve_model(services, "endpoint:databricks-meta-llama")
    assert runs  # the run model is imported for the endpoint tests' kinds


def test_a_deploy_whose_run_ends_before_deploy_returns_keeps_the_state_the_run_set(
    services: Services, acme_key: tuple[Principal, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    acme, _ = acme_key
    agents.create_agent(services, acme, "sales")
    submit = runs.submit

    def submit_and_finish(*args: object, **kwargs: object) -> str:  # the launcher was quicker than the caller
        run_id = submit(*args, **kwargs)  # type: ignore[arg-type]
        assert runs.wait_for_run(services, acme, run_id, timeout=30).finished
        return run_id

    monkeypatch.setattr(runs, "submit", submit_and_finish)
    deployed = endpoints.deploy_agent(services, acme, "sales", "sales-ep", wait_seconds=0)
    assert deployed.state == "READY" and deployed.run_id is not None
