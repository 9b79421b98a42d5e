"""Sampling over streamable HTTP on the handshake-era protocols: a scripted client declares
``sampling``, answers the server's ``sampling/createMessage`` with a POST of its own (on a new
connection each time, so with two workers it reaches either), and the tool is answered by its model.
Against the in-process server and against ``tsunami serve --workers 2``."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from tests.integration.api.test_workers import Served, served  # noqa: F401  (the 2-worker fixture)
from tests.integration.mcp.support import SALES_CSV, HttpServer, Keys, b64

MCP_ACCEPT = "application/json, text/event-stream"
ANSWER = "Sales by region, keyed by id."


class ScriptedSamplingClient:
    """A raw MCP client over HTTP that declares sampling and answers each sampling request with the
    next scripted text. Records what it was asked."""

    def __init__(self, url: str, key: str, protocol_version: str, answers: list[str]) -> None:
        self.url, self.key, self.version = url, key, protocol_version
        self.answers = list(answers)
        self.asked: list[dict[str, Any]] = []
        self.session_id: str | None = None
        self._next_id = 0

    def headers(self) -> dict[str, str]:
        headers = {"Accept": MCP_ACCEPT, "Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        if self.session_id is not None:
            headers |= {"Mcp-Session-Id": self.session_id, "MCP-Protocol-Version": self.version}
        return headers

    async def initialize(self) -> dict[str, Any]:
        params = {
            "protocolVersion": self.version,
            "capabilities": {"sampling": {}},
            "clientInfo": {"name": "scripted-sampling", "version": "0"},
        }
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.post(self.url, json=self._request("initialize", params), headers=self.headers())
            assert response.status_code == 200, response.text
            self.session_id = response.headers.get("mcp-session-id")
            await http.post(
                self.url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=self.headers()
            )
        return _only_message(response.text)

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        request = self._request("tools/call", {"name": name, "arguments": arguments})
        async with (
            httpx.AsyncClient(timeout=60) as http,
            http.stream("POST", self.url, json=request, headers=self.headers()) as response,
        ):
            assert response.status_code == 200, await response.aread()
            async for line in response.aiter_lines():
                if not line.startswith("data:") or not line[5:].strip():
                    continue
                message = json.loads(line[5:])
                if message.get("method") == "sampling/createMessage":
                    self.asked.append(message)
                    await self._answer(message)
                elif message.get("id") == request["id"]:
                    return dict(message)
        raise AssertionError("the tool call's stream ended without its result")

    async def _answer(self, request: dict[str, Any]) -> None:
        result = {
            "role": "assistant",
            "content": {"type": "text", "text": self.answers.pop(0)},
            "model": "scripted-model",
            "stopReason": "endTurn",
        }
        async with httpx.AsyncClient(timeout=30) as http:  # a new connection: any worker may take it
            answered = await http.post(
                self.url, json={"jsonrpc": "2.0", "id": request["id"], "result": result}, headers=self.headers()
            )
        assert answered.status_code == 202, answered.text

    def _request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        return {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params}


def _only_message(text: str) -> dict[str, Any]:
    data = [line[5:] for line in text.splitlines() if line.startswith("data:") and line[5:].strip()]
    return dict(json.loads(data[-1])) if data else dict(json.loads(text))


async def ask_through_sampling(url: str, key: str, version: str) -> tuple[dict[str, Any], ScriptedSamplingClient]:
    client = ScriptedSamplingClient(url, key, version, [ANSWER])
    await client.initialize()
    assert client.session_id is not None
    uploaded = await client.call_tool(
        "upload_file",
        {"file_name": "sales.csv", "dataset_name": "sales", "file_content": b64(SALES_CSV), "mode": "overwrite"},
    )
    assert not uploaded["result"].get("isError"), uploaded
    analysed = await client.call_tool("analyze_schema", {"table_name": "sales"})
    return analysed["result"], client


@pytest.mark.parametrize("version", ["2025-06-18", "2025-11-25"])
async def test_a_sampling_client_over_http_gets_its_own_model_s_answer(
    http_server: HttpServer, keys: Keys, version: str
) -> None:
    result, client = await ask_through_sampling(http_server.mcp_url, keys.acme_engineer, version)
    assert result["structuredContent"]["answered_by"] == "sampling"
    assert result["structuredContent"]["summary"] == ANSWER
    assert len(client.asked) == 1 and "north" in json.dumps(client.asked[0]["params"])


@pytest.mark.parametrize("version", ["2025-06-18", "2025-11-25"])
async def test_sampling_over_http_works_with_two_workers(served: Served, version: str) -> None:  # noqa: F811
    for _ in range(3):  # several rounds, each answer on a new connection: both workers take some
        result, _client = await ask_through_sampling(f"{served.url}/mcp", served.key, version)
        assert result["structuredContent"]["answered_by"] == "sampling"


async def test_a_session_belongs_to_the_key_that_opened_it(http_server: HttpServer, keys: Keys) -> None:
    client = ScriptedSamplingClient(http_server.mcp_url, keys.acme_engineer, "2025-06-18", [])
    await client.initialize()
    client.key = keys.acme_analyst
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(client.url, json=client._request("tools/list", {}), headers=client.headers())
    assert response.status_code == 404


async def test_a_client_without_sampling_gets_no_session_and_the_deterministic_answer(
    http_server: HttpServer, keys: Keys
) -> None:
    async with Client(StreamableHttpTransport(http_server.mcp_url, auth=keys.acme_engineer), mode="legacy") as client:
        await client.call_tool(
            "upload_file", {"file_name": "sales.csv", "dataset_name": "sales", "file_content": b64(SALES_CSV)}
        )
        result = await client.call_tool("analyze_schema", {"table_name": "sales"})
    assert result.structured_content is not None
    assert result.structured_content["answered_by"] == "deterministic"


@pytest.mark.parametrize("mode", ["legacy", "auto"])  # 2025-11-25 back channel; 2026-07-28 input-required rounds
async def test_the_fastmcp_client_s_sampling_handler_answers_over_http(
    http_server: HttpServer, keys: Keys, mode: str
) -> None:
    async def model(messages: Any, params: Any, context: Any) -> str:
        return ANSWER

    transport = StreamableHttpTransport(http_server.mcp_url, auth=keys.acme_engineer)
    async with Client(transport, mode=mode, sampling_handler=model) as client:
        await client.call_tool(
            "upload_file", {"file_name": "sales.csv", "dataset_name": "sales", "file_content": b64(SALES_CSV)}
        )
        result = await client.call_tool("analyze_schema", {"table_name": "sales"})
    assert result.structured_content is not None
    assert result.structured_content["answered_by"] == "sampling"
