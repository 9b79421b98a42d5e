"""The Anthropic Messages API (``POST {base_url}/v1/messages``) as an :class:`~servicetsunami.llm.base.LLM`."""

from __future__ import annotations

import httpx

from servicetsunami.llm.base import Answer, LLMUnavailable
from servicetsunami.llm.http import post_json
from servicetsunami.settings import AISettings

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"


class AnthropicLLM:
    """The Anthropic Messages API; ``base_url`` empty means Anthropic's public endpoint."""

    name = "anthropic"

    def __init__(self, settings: AISettings, *, transport: httpx.BaseTransport | None = None) -> None:
        self._settings = settings
        self._transport = transport

    def complete(self, system: str, prompt: str, /, *, max_tokens: int) -> Answer:
        s = self._settings
        key = s.api_key.get_secret_value() if s.api_key else ""
        body: dict[str, object] = {
            "model": s.model,
            "max_tokens": max_tokens,
            "system": system,
            "messages": [{"role": "user", "content": prompt}],
        }
        data = post_json(
            f"{(s.base_url or DEFAULT_BASE_URL).rstrip('/')}/v1/messages",
            body,
            headers={"x-api-key": key, "anthropic-version": API_VERSION},
            timeout=s.timeout_seconds,
            transport=self._transport,
            provider=self.name,
        )
        try:
            text = "".join(part["text"] for part in data["content"] if part.get("type") == "text")
        except (KeyError, TypeError, AttributeError) as exc:
            raise LLMUnavailable("anthropic answered in an unexpected shape") from exc
        return Answer(text, self.name, str(data.get("model") or s.model))
