"""The LLM port: ask a model for text, through whichever path is available.

Paths, in the order the AI tools try them (DESIGN.md section 7):

1. ``sampling``: the MCP client's own model (the door supplies an :class:`LLM` that asks the client;
   no key on our side);
2. a provider configured in settings (``TSUNAMI_AI__PROVIDER``): ``anthropic`` (Messages API) or
   ``openai`` (any OpenAI-compatible ``/chat/completions`` endpoint, Databricks Foundation Model APIs
   included: ``base_url`` ``https://<workspace>/serving-endpoints``), called with httpx;
3. none: the tools answer deterministically from profiles.

A path that fails raises :class:`LLMUnavailable` and the next one is tried. :class:`SamplingNeeded`
is how a door that asks its client over several rounds stops a flow until the answer comes back.
API keys come from settings only and never appear in errors or logs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from servicetsunami.settings import AISettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    path: str  # "sampling", "anthropic" or "openai"
    model: str | None = None


class LLMUnavailable(Exception):
    """This path cannot answer now (not configured, refused, network, bad reply); try the next."""


class SamplingNeeded(Exception):  # a control-flow signal, not an error
    """The client must be asked (``system``, ``prompt``) before the flow can go on."""

    def __init__(self, system: str, prompt: str, max_tokens: int) -> None:
        super().__init__("sampling needed")
        self.system, self.prompt, self.max_tokens = system, prompt, max_tokens


class LLM(Protocol):
    name: str

    def complete(self, system: str, prompt: str, /, *, max_tokens: int) -> Answer: ...


class AnthropicLLM:
    """The Anthropic Messages API."""

    name = "anthropic"

    def __init__(self, settings: AISettings, *, transport: httpx.BaseTransport | None = None) -> None:
        self._settings = settings
        self._transport = transport

    def complete(self, system: str, prompt: str, /, *, max_tokens: int) -> Answer:
        s = self._settings
        key = s.api_key.get_secret_value() if s.api_key else ""
        body = {
            "model": s.model,
            "max_tokens": max_tokens,
            "system": system,
            "messages": [{"role": "user", "content": prompt}],
        }
        data = _post(
            f"{(s.base_url or 'https://api.anthropic.com').rstrip('/')}/v1/messages",
            body,
            {"x-api-key": key, "anthropic-version": "2023-06-01"},
            s.timeout_seconds,
            self._transport,
            self.name,
        )
        try:
            text = "".join(part["text"] for part in data["content"] if part.get("type") == "text")
        except (KeyError, TypeError) as exc:
            raise LLMUnavailable("anthropic answered in an unexpected shape") from exc
        return Answer(text, self.name, str(data.get("model") or s.model))


class OpenAICompatibleLLM:
    """Any OpenAI-compatible ``/chat/completions`` endpoint (OpenAI, Databricks, vLLM, ...)."""

    name = "openai"

    def __init__(self, settings: AISettings, *, transport: httpx.BaseTransport | None = None) -> None:
        self._settings = settings
        self._transport = transport

    def complete(self, system: str, prompt: str, /, *, max_tokens: int) -> Answer:
        s = self._settings
        key = s.api_key.get_secret_value() if s.api_key else ""
        body = {
            "model": s.model,
            "max_tokens": max_tokens,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": prompt}],
        }
        data = _post(
            f"{(s.base_url or 'https://api.openai.com/v1').rstrip('/')}/chat/completions",
            body,
            {"authorization": f"Bearer {key}"},
            s.timeout_seconds,
            self._transport,
            self.name,
        )
        try:
            text = str(data["choices"][0]["message"]["content"])
        except (KeyError, IndexError, TypeError) as exc:
            raise LLMUnavailable("the OpenAI-compatible endpoint answered in an unexpected shape") from exc
        return Answer(text, self.name, str(data.get("model") or s.model))


def _post(
    url: str,
    body: dict[str, object],
    headers: dict[str, str],
    timeout: float,
    transport: httpx.BaseTransport | None,
    name: str,
) -> dict[str, Any]:
    try:
        with httpx.Client(timeout=timeout, transport=transport) as client:
            response = client.post(url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        logger.warning("LLM provider %s unreachable: %s", name, type(exc).__name__)
        raise LLMUnavailable(f"{name} could not be reached") from exc
    if response.status_code != 200:
        logger.warning("LLM provider %s answered HTTP %s", name, response.status_code)
        raise LLMUnavailable(f"{name} answered HTTP {response.status_code}")
    try:
        data = response.json()
    except ValueError as exc:
        raise LLMUnavailable(f"{name} answered with something other than JSON") from exc
    if not isinstance(data, dict):
        raise LLMUnavailable(f"{name} answered in an unexpected shape")
    return data


def provider_from_settings(settings: AISettings, /) -> LLM | None:
    """The configured provider, or None when none is (or it lacks a model)."""
    if settings.provider == "none" or not settings.model:
        return None
    if settings.provider == "anthropic":
        return AnthropicLLM(settings)
    return OpenAICompatibleLLM(settings)


class Chain:
    """The paths to try in order; :meth:`ask` returns the first answer, or None for deterministic."""

    def __init__(self, paths: Sequence[LLM], *, max_tokens: int = 1024) -> None:
        self.paths = list(paths)
        self.max_tokens = max_tokens
        self.skipped: list[str] = []

    def ask(self, system: str, prompt: str, /) -> Answer | None:
        while self.paths:
            path = self.paths[0]
            try:
                return path.complete(system, prompt, max_tokens=self.max_tokens)
            except LLMUnavailable as exc:
                logger.info("LLM path %s unavailable: %s", path.name, exc)
                self.skipped.append(f"{path.name}: {exc}")
                self.paths.pop(0)
        return None
