"""Each provider's request and reply shapes (over httpx's in-process mock transport, no network),
the registry, and the order of the path chain. The behaviour every provider shares is in
tests/contract/test_llm_contract.py."""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import SecretStr

from servicetsunami.llm.anthropic import AnthropicLLM
from servicetsunami.llm.base import Answer, LLMUnavailable, SamplingNeeded
from servicetsunami.llm.chain import Chain
from servicetsunami.llm.openai import OpenAICompatibleLLM
from servicetsunami.llm.registry import PROVIDERS, create_provider
from servicetsunami.settings import AISettings

SECRET = "sk-test-0123456789"


def _settings(provider: str, **extra: object) -> AISettings:
    return AISettings.model_validate({"provider": provider, "model": "m1", "api_key": SecretStr(SECRET), **extra})


def test_anthropic_is_called_with_the_messages_api_shape() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"model": "m1", "content": [{"type": "text", "text": "hello"}]})

    answer = AnthropicLLM(_settings("anthropic"), transport=httpx.MockTransport(handler)).complete(
        "sys", "hi", max_tokens=99
    )

    assert answer == Answer("hello", "anthropic", "m1")
    body = json.loads(seen[0].content)
    assert str(seen[0].url) == "https://api.anthropic.com/v1/messages"
    assert seen[0].headers["x-api-key"] == SECRET and seen[0].headers["anthropic-version"] == "2023-06-01"
    assert body == {"model": "m1", "max_tokens": 99, "system": "sys", "messages": [{"role": "user", "content": "hi"}]}


def test_an_openai_compatible_endpoint_such_as_databricks_serving_is_called_with_chat_completions() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"choices": [{"message": {"content": "SELECT 1"}}]})

    settings = _settings("openai", base_url="https://dbc.example/serving-endpoints/")
    answer = OpenAICompatibleLLM(settings, transport=httpx.MockTransport(handler)).complete("sys", "hi", max_tokens=5)

    assert answer.text == "SELECT 1" and answer.path == "openai"
    assert str(seen[0].url) == "https://dbc.example/serving-endpoints/chat/completions"
    assert seen[0].headers["authorization"] == f"Bearer {SECRET}"
    assert json.loads(seen[0].content)["messages"][0] == {"role": "system", "content": "sys"}


def test_a_failing_provider_is_skipped_without_its_key_in_the_reason() -> None:
    failing = OpenAICompatibleLLM(
        _settings("openai"), transport=httpx.MockTransport(lambda r: httpx.Response(401, text=SECRET))
    )
    with pytest.raises(LLMUnavailable) as caught:
        failing.complete("s", "p", max_tokens=5)
    assert SECRET not in str(caught.value)

    chain = Chain([failing])
    assert chain.ask("s", "p") is None
    assert chain.skipped == ["openai: openai answered HTTP 401"]


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_the_registry_builds_the_configured_provider_under_its_name(provider: str) -> None:
    llm = create_provider(_settings(provider))
    assert llm is not None and llm.name == provider


def test_no_provider_is_built_when_none_is_configured_or_no_model_is_named() -> None:
    assert create_provider(_settings("none")) is None
    assert create_provider(_settings("openai", model="")) is None


class Scripted:
    """A path that answers from a script: a text, or a signal to raise."""

    def __init__(self, name: str, *replies: str | Exception) -> None:
        self.name = name
        self.replies = list(replies)
        self.asked = 0

    def complete(self, system: str, prompt: str, /, *, max_tokens: int) -> Answer:
        self.asked += 1
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return Answer(reply, self.name)


def test_the_chain_puts_sampling_before_the_configured_provider() -> None:
    chain = Chain.from_settings(_settings("anthropic", max_tokens=300), sampling=Scripted("sampling", "x"))
    assert [path.name for path in chain.paths] == ["sampling", "anthropic"]
    assert chain.max_tokens == 300


def test_the_chain_leaves_sampling_out_when_settings_turn_it_off() -> None:
    chain = Chain.from_settings(_settings("none", sampling=False), sampling=Scripted("sampling", "x"))
    assert chain.paths == []
    assert chain.ask("s", "p") is None


def test_an_unavailable_path_is_not_asked_again_in_the_same_flow() -> None:
    sampling = Scripted("sampling", LLMUnavailable("the client's model gave no answer"))
    provider = Scripted("openai", "first", "second")
    chain = Chain([sampling, provider])

    assert chain.ask("s", "p") == Answer("first", "openai")
    assert chain.ask("s", "p") == Answer("second", "openai")
    assert sampling.asked == 1
    assert chain.skipped == ["sampling: the client's model gave no answer"]


def test_sampling_needed_passes_through_the_chain_to_the_door() -> None:
    chain = Chain([Scripted("sampling", SamplingNeeded("s", "p", 64)), Scripted("openai", "unused")])
    with pytest.raises(SamplingNeeded) as caught:
        chain.ask("s", "p")
    assert (caught.value.system, caught.value.prompt, caught.value.max_tokens) == ("s", "p", 64)
    assert [path.name for path in chain.paths] == ["sampling", "openai"]
