"""The LLM contract (``servicetsunami.llm.base``), run against every registered provider over real
HTTP to a fake on loopback (tests/fakes/llm.py) that speaks each provider's wire shape.

Whatever goes wrong on the way, ``complete`` raises ``LLMUnavailable`` and nothing else, and the API
key shows neither in the signal (nor the exceptions chained to it) nor in any log line.
"""

from __future__ import annotations

import logging
import socket
import traceback
import uuid
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from servicetsunami.llm.base import LLM, Answer, LLMUnavailable
from servicetsunami.llm.chain import Chain
from servicetsunami.llm.registry import PROVIDERS
from servicetsunami.settings import AISettings
from tests.fakes.llm import FakeLLM, running_fake_llm


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[FakeLLM]:
    with running_fake_llm() as fake:
        yield fake


@pytest.fixture
def key(fake_llm: FakeLLM) -> str:
    key = f"sk-contract-{uuid.uuid4().hex}"
    fake_llm.reset(key)
    return key


@pytest.fixture(params=sorted(PROVIDERS))
def provider_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def make(provider_name: str, fake_llm: FakeLLM, key: str, **overrides: object) -> LLM:
    values: dict[str, object] = {
        "provider": provider_name,
        "model": "configured-model",
        "api_key": SecretStr(key),
        "base_url": fake_llm.base_url(provider_name),
        "timeout_seconds": 5,
    }
    return PROVIDERS[provider_name](AISettings.model_validate(values | overrides))


def unavailable_without_key(llm: LLM, key: str, caplog: pytest.LogCaptureFixture) -> LLMUnavailable:
    """The signal ``complete`` raised, after checking that the key is in neither it nor the logs."""
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    with pytest.raises(LLMUnavailable) as caught:
        llm.complete("system text", "a prompt", max_tokens=64)
    assert key not in "".join(traceback.format_exception(caught.value))
    assert key not in caplog.text
    assert all(key not in record.getMessage() for record in caplog.records)
    return caught.value


def test_a_provider_returns_the_models_answer_under_its_own_name(
    provider_name: str, fake_llm: FakeLLM, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_llm.text, fake_llm.model = "SELECT 1", "served-model"
    llm = make(provider_name, fake_llm, key)

    answer = llm.complete("system text", "a prompt", max_tokens=64)

    assert answer == Answer("SELECT 1", provider_name, "served-model")
    assert llm.name == provider_name
    assert [seen.body["max_tokens"] for seen in fake_llm.seen] == [64]
    assert "a prompt" in str(fake_llm.seen[0].body) and "system text" in str(fake_llm.seen[0].body)
    assert key not in caplog.text


def test_a_provider_sends_its_key_and_is_refused_without_it(
    provider_name: str, fake_llm: FakeLLM, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    llm = make(provider_name, fake_llm, f"{key}-wrong")
    assert "401" in str(unavailable_without_key(llm, f"{key}-wrong", caplog))


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_throttled_or_failing_provider_is_unavailable(
    provider_name: str, fake_llm: FakeLLM, key: str, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    fake_llm.status = status
    assert str(status) in str(unavailable_without_key(make(provider_name, fake_llm, key), key, caplog))


def test_a_provider_that_does_not_answer_in_time_is_unavailable(
    provider_name: str, fake_llm: FakeLLM, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    fake_llm.hang = True
    unavailable_without_key(make(provider_name, fake_llm, key, timeout_seconds=0.2), key, caplog)
    assert len(fake_llm.seen) == 1  # the request arrived; the answer never did


def test_an_unreachable_provider_is_unavailable(
    provider_name: str, fake_llm: FakeLLM, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as sock:  # a loopback port nothing listens on once the socket is closed
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    unavailable_without_key(make(provider_name, fake_llm, key, base_url=closed), key, caplog)


def test_a_malformed_endpoint_url_makes_the_provider_unavailable(
    provider_name: str, fake_llm: FakeLLM, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    unavailable_without_key(make(provider_name, fake_llm, key, base_url="http://[::1"), key, caplog)


@pytest.mark.parametrize("raw", [b"not json", b"[]", b"{}", b'{"content": ["x"], "choices": []}'])
def test_a_reply_in_a_shape_the_provider_cannot_read_makes_it_unavailable(
    provider_name: str, fake_llm: FakeLLM, key: str, caplog: pytest.LogCaptureFixture, raw: bytes
) -> None:
    fake_llm.raw = raw
    unavailable_without_key(make(provider_name, fake_llm, key), key, caplog)


def test_a_chain_moves_past_an_unavailable_provider_to_the_next_path(
    provider_name: str, fake_llm: FakeLLM, key: str
) -> None:
    fake_llm.status = 503
    chain = Chain([make(provider_name, fake_llm, key)])

    assert chain.ask("system text", "a prompt") is None
    assert chain.skipped == [f"{provider_name}: {provider_name} answered HTTP 503"]
