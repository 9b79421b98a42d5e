"""The chat-with-tools port over each provider's wire, against the fake LLM on loopback: tool calls
and usage read back, conversations with tool turns sent in each provider's shape, streaming, and
every failure turned into the port's one signal."""

from __future__ import annotations

import json

import pytest

from servicetsunami.llm.base import LLMUnavailable
from servicetsunami.llm.chat import AnthropicChat, OpenAIChat, ToolSpec, chat_model_from_settings
from servicetsunami.settings import AISettings
from tests.fakes.llm import FakeLLM, Scripted
from tests.integration.serving.conftest import KEY

TOOL = ToolSpec("query_sql", "Run SQL", {"type": "object", "properties": {"sql": {"type": "string"}}})
CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "How many?"},
    {
        "role": "assistant",
        "content": "Let me look.",
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "query_sql", "arguments": '{"sql": "x"}'}}
        ],
    },
    {"role": "tool", "tool_call_id": "c1", "content": '{"data": 3}'},
    {"role": "tool", "tool_call_id": "c2", "content": '{"data": 4}'},
    {"role": "assistant", "content": "bad", "tool_calls": [{"id": "c3", "function": {"name": "q", "arguments": "{"}}]},
]


def anthropic(llm: FakeLLM, key: str = KEY) -> AnthropicChat:
    return AnthropicChat(base_url=llm.base_url("anthropic"), api_key=key, model="claude", timeout_seconds=10)


def openai(llm: FakeLLM, key: str = KEY) -> OpenAIChat:
    return OpenAIChat(base_url=llm.base_url("openai"), api_key=key, model="gpt", timeout_seconds=10)


def test_anthropic_tool_use_is_read_and_tool_turns_are_sent_as_tool_results(llm: FakeLLM) -> None:
    llm.script = [Scripted(text="Checking.", tool_calls=[("query_sql", {"sql": "SELECT 1"})], input_tokens=7)]
    pieces: list[str] = []
    model = anthropic(llm)
    reply = model.chat(CONVERSATION, tools=[TOOL], max_tokens=100, on_text=pieces.append)
    model.close()
    assert reply.text == "Checking." and pieces == ["Checking."]
    assert [(c.name, json.loads(c.arguments)) for c in reply.tool_calls] == [("query_sql", {"sql": "SELECT 1"})]
    assert reply.input_tokens == 7 and reply.output_tokens == 5
    sent = llm.seen[-1].body
    assert sent["system"] == "Be brief." and sent["tools"][0]["input_schema"]["type"] == "object"
    roles = [m["role"] for m in sent["messages"]]
    assert roles == ["user", "assistant", "user", "assistant"]
    assert [b["type"] for b in sent["messages"][1]["content"]] == ["text", "tool_use"]
    assert [b["tool_use_id"] for b in sent["messages"][2]["content"]] == ["c1", "c2"]  # merged in one turn
    assert sent["messages"][3]["content"][1]["input"] == {}  # arguments that do not parse


def test_openai_streams_text_and_tool_calls_in_pieces(llm: FakeLLM) -> None:
    llm.script = [Scripted(text="one two three", tool_calls=[("query_sql", {"sql": "SELECT 42"})], output_tokens=9)]
    pieces: list[str] = []
    model = openai(llm)
    reply = model.chat([{"role": "user", "content": "hi"}], tools=[TOOL], max_tokens=100, on_text=pieces.append)
    assert pieces == ["one", " two", " three"] and reply.text == "one two three"
    assert json.loads(reply.tool_calls[0].arguments) == {"sql": "SELECT 42"} and reply.output_tokens == 9
    assert llm.seen[-1].body["stream"] is True
    plain = model.chat([{"role": "user", "content": "hi"}], tools=[], max_tokens=100)
    assert plain.text == "an answer" and "tools" not in llm.seen[-1].body
    model.close()


def test_anthropic_streams_text_as_it_comes_and_assembles_tool_calls_from_pieces(llm: FakeLLM) -> None:
    script = Scripted(text="one two three", tool_calls=[("query_sql", {"sql": "SELECT 42"})], output_tokens=9)
    llm.script = [script, Scripted(text="whole answer")]
    pieces: list[str] = []
    model = anthropic(llm)
    reply = model.chat([{"role": "user", "content": "hi"}], tools=[TOOL], max_tokens=100, on_text=pieces.append)
    assert pieces == ["one", " two", " three"] and reply.text == "one two three"
    assert [(c.name, json.loads(c.arguments)) for c in reply.tool_calls] == [("query_sql", {"sql": "SELECT 42"})]
    assert (reply.input_tokens, reply.output_tokens, reply.model) == (10, 9, "fake-model")
    assert llm.seen[-1].body["stream"] is True
    plain = model.chat([{"role": "user", "content": "hi"}], tools=[], max_tokens=100)
    assert plain.text == "whole answer" and "stream" not in llm.seen[-1].body
    model.close()


def test_an_anthropic_stream_that_is_refused_or_not_a_stream_is_the_ports_one_signal(llm: FakeLLM) -> None:
    hi = [{"role": "user", "content": "hi"}]
    refused = anthropic(llm, key="wrong")
    with pytest.raises(LLMUnavailable):
        refused.chat(hi, tools=[], max_tokens=10, on_text=print)
    llm.raw = b'{"content": []}'
    odd = anthropic(llm)
    with pytest.raises(LLMUnavailable):
        odd.chat(hi, tools=[], max_tokens=10, on_text=print)
    for model in (refused, odd):
        model.close()


def test_every_failure_is_the_ports_one_signal(llm: FakeLLM) -> None:
    hi = [{"role": "user", "content": "hi"}]
    refused = (openai(llm, key="wrong"), anthropic(llm, key="wrong"))
    for model in refused:
        with pytest.raises(LLMUnavailable):
            model.chat(hi, tools=[], max_tokens=10)
    with pytest.raises(LLMUnavailable):
        refused[0].chat(hi, tools=[], max_tokens=10, on_text=print)
    llm.raw = b'{"choices": []}'
    odd = (openai(llm), anthropic(llm))
    for model in odd:
        with pytest.raises(LLMUnavailable):
            model.chat(hi, tools=[], max_tokens=10)
    unreachable = OpenAIChat(base_url="http://127.0.0.1:9", api_key="k", model="m", timeout_seconds=2)
    with pytest.raises(LLMUnavailable):
        unreachable.chat(hi, tools=[], max_tokens=10, on_text=print)
    for model in (*refused, *odd, unreachable):
        model.close()


def test_the_configured_provider_becomes_a_chat_model() -> None:
    assert chat_model_from_settings(AISettings()) is None
    made = [
        chat_model_from_settings(AISettings(provider="anthropic", model="claude")),
        chat_model_from_settings(AISettings(provider="openai", model="gpt")),
    ]
    assert [type(m) for m in made] == [AnthropicChat, OpenAIChat]
    for model in made:
        getattr(model, "close")()  # noqa: B009  # the protocol does not declare close
