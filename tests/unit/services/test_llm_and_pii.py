"""The LLM providers' request and reply shapes (over httpx's in-process mock transport, no network),
the path chain, and PII recognition."""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import SecretStr

from servicetsunami.llm.providers import Answer, AnthropicLLM, Chain, LLMUnavailable, OpenAICompatibleLLM
from servicetsunami.services.governance import pii
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


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (["ann@example.com", "bob@x.org", "c@d.io"], "email"),
        (["+1 415 555 0101", "(212) 555-0199", "+49 30 123456"], "phone"),
        (["123-45-6789", "987-65-4321", "111-22-3333"], "national_id"),
        (["Ann Smith", "Bob Jones", "Cem Kaya", "Dee Lu"], "name"),
        (["north", "south", "east"], None),
        (["New York", "New York", "New York", "New York", "Paris Nord"], None),
        (["12", "13", "14"], None),
    ],
)
def test_pii_is_recognised_by_content(values: list[str], kind: str | None) -> None:
    assert pii.kind_by_content(values) == kind


def test_pii_is_recognised_by_column_name() -> None:
    assert pii.kind_by_name("customer_email") == "email"
    assert pii.kind_by_name("last_name") == "name"
    assert pii.kind_by_name("date_of_birth") == "birth_date"
    assert pii.kind_by_name("amount") is None
