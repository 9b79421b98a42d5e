"""Agents and endpoints through a real MCP client: create, deploy, invoke (and the seeds'
deploy_model / invoke_model), with the endpoint's rate limit shared with REST."""

from __future__ import annotations

from servicetsunami.services.container import Services
from servicetsunami.tenancy import Principal
from tests.fakes.llm import FakeLLM, Scripted
from tests.helpers import make_principal
from tests.integration.mcp.support import error_code, local_client


async def test_an_agent_is_created_deployed_and_invoked_over_mcp(
    services: Services, acme_key: tuple[Principal, str], llm: FakeLLM
) -> None:
    _, key = acme_key
    async with local_client(services, key) as client:
        made = await client.call_tool("create_agent", {"name": "sales", "tools": ["query_sql"]})
        assert made.structured_content["version"] == 1  # type: ignore[index]
        await client.call_tool("update_agent", {"agent": "sales", "instructions": "Be brief."})
        got = await client.call_tool("get_agent", {"agent": "sales"})
        assert got.structured_content["instructions"] == "Be brief."  # type: ignore[index]
        listed = await client.call_tool("list_agents", {})
        assert [a["name"] for a in listed.structured_content["agents"]] == ["sales"]  # type: ignore[index]
        deployed = await client.call_tool("deploy_agent", {"agent": "sales", "endpoint_name": "sales-ep"})
        assert deployed.structured_content["state"] == "READY"  # type: ignore[index]

        llm.script = [
            Scripted(tool_calls=[("query_sql", {"sql": "SELECT max(id) FROM silver.orders"})]),
            Scripted(text="3"),
        ]
        request = {"messages": [{"role": "user", "content": "last id?"}]}
        answered = await client.call_tool("invoke_endpoint", {"name": "sales-ep", "request": request})
        answer = answered.structured_content["answer"]  # type: ignore[index]
        assert answer["choices"][0]["message"]["content"] == "3"
        streamed = await client.call_tool_mcp(
            "invoke_endpoint", {"name": "sales-ep", "request": request | {"stream": True}}
        )
        assert error_code(streamed) == "invalid_input"

        model = await client.call_tool("deploy_model", {"model_name": "sales", "endpoint_name": "agent_sales"})
        assert model.structured_content["endpoint_url"].endswith("/serving-endpoints/agent_sales/invocations")  # type: ignore[index]
        llm.script = [Scripted(text="one"), Scripted(text="two"), Scripted(text="three")]
        one = await client.call_tool("invoke_model", {"endpoint_name": "agent_sales", "inputs": "hi"})
        assert one.structured_content["answer"]["choices"][0]["message"]["content"] == "one"  # type: ignore[index]
        rows = await client.call_tool("invoke_model", {"endpoint_name": "agent_sales", "inputs": ["a", "b"]})
        assert rows.structured_content["answer"] == {"predictions": ["two", "three"]}  # type: ignore[index]

        endpoints = await client.call_tool("list_endpoints", {})
        assert sorted(e["name"] for e in endpoints.structured_content["endpoints"]) == ["agent_sales", "sales-ep"]  # type: ignore[index]
        usage = await client.call_tool("get_endpoint", {"name": "sales-ep"})
        assert usage.structured_content["usage"]["requests"] == 1  # type: ignore[index]
        await client.call_tool("delete_endpoint", {"name": "agent_sales"})
        await client.call_tool("delete_agent", {"agent": "sales"})
        gone = await client.call_tool_mcp("get_agent", {"agent": "sales"})
        assert error_code(gone) == "not_found"

    _, other = make_principal(services, "globex")
    async with local_client(services, other) as client:
        refused = await client.call_tool_mcp("invoke_endpoint", {"name": "sales-ep", "request": request})
        assert error_code(refused) == "not_found"


async def test_an_analyst_may_invoke_but_not_deploy(services: Services, acme_key: tuple[Principal, str]) -> None:
    _, analyst = make_principal(services, "acme", role="analyst")
    async with local_client(services, analyst) as client:
        names = {t.name for t in await client.list_tools()}
        assert {"invoke_endpoint", "list_endpoints", "get_agent"} <= names
        assert not {"deploy_agent", "create_agent", "delete_endpoint"} & names
