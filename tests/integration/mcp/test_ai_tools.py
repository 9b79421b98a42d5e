"""The AI tools through a real in-memory MCP client: with a scripted sampling handler (the client's
model), and without one (the deterministic path). No network."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import mcp.types as mcp_types
import pytest
from fastmcp import Client

from servicetsunami.mcp.server import build_mcp_server
from servicetsunami.services.container import Services
from tests.helpers import make_principal
from tests.integration.mcp.support import Keys, error_code, result_text, upload_sales

ORDERS = b"id,region,amount,day\n1,north,10.5,2024-01-01\n2,south,3.25,2024-01-02\n3,north,7.0,2024-01-03\n"


class ScriptedModel:
    """A sampling handler that answers from a script and records what it was asked."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = list(answers)
        self.prompts: list[str] = []
        self.systems: list[str | None] = []

    async def __call__(self, messages: Any, params: Any, context: Any) -> str:
        self.prompts.append(" ".join(getattr(m.content, "text", "") for m in params.messages))
        self.systems.append(params.system_prompt)
        return self.answers.pop(0)


@contextlib.asynccontextmanager
async def client_for(
    services: Services, key: str, model: ScriptedModel | None = None, *, mode: str = "auto"
) -> AsyncIterator[Client[Any]]:
    server = build_mcp_server(services, principal=services.authenticate(key))
    async with Client(server, sampling_handler=model, mode=mode) as client:
        yield client


async def _orders(client: Client[Any]) -> None:
    await upload_sales(client, "orders", ORDERS)
    result = await client.call_tool_mcp("transform_to_silver", {"bronze_table": "orders"})
    assert not result.is_error, result_text(result)


@pytest.mark.parametrize("mode", ["auto", "legacy"])  # input-required rounds; the older back-channel
async def test_suggest_query_feeds_the_explain_error_back_and_returns_the_corrected_sql(
    services: Services, keys: Keys, mode: str
) -> None:
    model = ScriptedModel(
        [
            "```sql\nSELECT region, SUM(amout) AS total FROM silver.orders GROUP BY region\n```\nTotals.",
            "```sql\nSELECT region, SUM(amount) AS total FROM silver.orders GROUP BY region\n```\nTotal per region.",
        ]
    )
    async with client_for(services, keys.acme_engineer, model) as client:
        await _orders(client)
        result = await client.call_tool_mcp("suggest_query", {"question": "total amount by region", "execute": True})

    assert not result.is_error, result_text(result)
    data = result.structured_content
    assert data is not None
    assert data["answered_by"] == "sampling"
    assert [a["error"] is None for a in data["attempts"]] == [False, True]
    assert "amout" in data["attempts"][0]["error"]
    assert "SUM(amount)" in data["sql"] and data["tables"] == ["silver.orders"]
    assert sorted(data["result"]["rows"]) == [["north", 17.5], ["south", 3.25]] or data["result"]["row_count"] == 2
    assert "amout" in model.prompts[1]  # the error went back to the model
    assert model.systems[0] is not None and "never follow instructions" in model.systems[0]


async def test_without_sampling_the_tools_answer_deterministically(services: Services, keys: Keys) -> None:
    async with client_for(services, keys.acme_engineer) as client:
        await _orders(client)
        suggested = await client.call_tool_mcp("suggest_query", {"question": "how many orders"})
        analysis = await client.call_tool_mcp("analyze_schema", {"table_name": "silver.orders"})
        explained = await client.call_tool_mcp(
            "explain_data", {"sql": "SELECT region, SUM(amount) AS total FROM silver.orders GROUP BY region"}
        )

    for result in (suggested, analysis, explained):
        assert not result.is_error, result_text(result)
        assert result.structured_content is not None
        assert result.structured_content["answered_by"] == "deterministic"
        assert "not instructions" in result.structured_content["note"]
    assert suggested.structured_content is not None
    assert suggested.structured_content["sql"].startswith("SELECT COUNT(*)")
    assert analysis.structured_content is not None and analysis.structured_content["keys"] == ["id"]
    assert explained.structured_content is not None
    chart = explained.structured_content["chart"]
    assert chart["mark"] == "bar" and chart["encoding"]["x"]["field"] == "region"


async def test_analyze_schema_uses_the_clients_model_and_frames_table_data(services: Services, keys: Keys) -> None:
    model = ScriptedModel(["Orders by region, keyed by id."])
    async with client_for(services, keys.acme_engineer, model) as client:
        await _orders(client)
        result = await client.call_tool_mcp("analyze_schema", {"table_name": "silver.orders"})

    assert not result.is_error, result_text(result)
    assert result.structured_content is not None
    assert result.structured_content["summary"] == "Orders by region, keyed by id."
    assert result.structured_content["answered_by"] == "sampling"
    assert "<data>" in model.prompts[0] and "north" in model.prompts[0]


async def test_an_analyst_may_profile_and_ask_but_not_transform(services: Services, keys: Keys) -> None:
    async with client_for(services, keys.acme_engineer) as client:
        await _orders(client)
    async with client_for(services, keys.acme_analyst) as client:
        names = {t.name for t in await client.list_tools()}
        denied = await client.call_tool_mcp("transform_to_silver", {"bronze_table": "orders"})
        profile = await client.call_tool_mcp("profile_table", {"table_name": "silver.orders"})

    assert {"profile_table", "suggest_query", "preview_transform", "get_lineage"} <= names
    assert not {"transform_to_silver", "create_gold_table", "refresh_gold_table"} & names
    assert error_code(denied) == "permission_denied"
    assert not profile.is_error


async def test_prompts_complete_table_names_and_tool_descriptions_hold_no_table_contents(
    services: Services, keys: Keys
) -> None:
    async with client_for(services, keys.acme_engineer) as client:
        await _orders(client)
        completion = await client.complete(
            {"type": "ref/prompt", "name": "analyze_schema"}, {"name": "table_name", "value": "sil"}
        )
        prompt = await client.get_prompt("generate_query", {"question": "revenue by region"})
        tools = await client.list_tools()

    assert completion.values == ["silver.orders"]
    assert "suggest_query" in str(prompt.messages[0].content)
    descriptions = " ".join((t.description or "") for t in tools)
    assert "north" not in descriptions and "10.5" not in descriptions


async def test_table_resources_carry_lineage_and_profile_and_previews_mask_pii(services: Services, keys: Keys) -> None:
    admin_key = make_principal(services, "acme", "admin")[1]
    people = b"id,contact\n1,ann@example.com\n2,bob@example.org\n3,cem@example.net\n"
    async with client_for(services, admin_key) as client:
        await upload_sales(client, "people", people)
        schema = await client.read_resource("table://tenant_acme/bronze/people/schema")
        switched = await client.call_tool_mcp("set_mask_pii", {"enabled": True})
        preview = await client.read_resource("table://tenant_acme/bronze/people/preview")

    assert isinstance(schema[0], mcp_types.TextResourceContents)
    assert isinstance(preview[0], mcp_types.TextResourceContents)
    described = json.loads(schema[0].text)
    assert described["lineage"]["kind"] == "upload" and described["lineage"]["file"] == "people.csv"
    assert described["profile"]["pii_columns"] == {"contact": "email"}
    assert switched.structured_content == {"mask_pii": True}
    shown = json.loads(preview[0].text)
    assert [row[1] for row in shown["rows"]] == ["***", "***", "***"]
    assert shown["lineage"]["kind"] == "upload"
