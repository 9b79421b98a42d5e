"""Any OpenAI-compatible ``POST {base_url}/chat/completions`` endpoint as an :class:`~servicetsunami.llm.base.LLM`.

OpenAI itself, Databricks Foundation Model APIs and Model Serving (``base_url``
``https://<workspace>/serving-endpoints``, a Databricks token as the key), vLLM, Ollama and the like.
"""

from __future__ import annotations

import httpx

from servicetsunami.llm.base import Answer, LLMUnavailable
from servicetsunami.llm.http import post_json
from servicetsunami.settings import AISettings

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAICompatibleLLM:
    """Chat completions with a bearer key; ``base_url`` empty means OpenAI's public endpoint."""

    name = "openai"

    def __init__(self, settings: AISettings, *, transport: httpx.BaseTransport | None = None) -> None:
        self._settings = settings
        self._transport = transport

    def complete(self, system: str, prompt: str, /, *, max_tokens: int) -> Answer:
        s = self._settings
        key = s.api_key.get_secret_value() if s.api_key else ""
        body: dict[str, object] = {
            "model": s.model,
            "max_tokens": max_tokens,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": prompt}],
        }
        data = post_json(
            f"{(s.base_url or DEFAULT_BASE_URL).rstrip('/')}/chat/completions",
            body,
            headers={"authorization": f"Bearer {key}"},
            timeout=s.timeout_seconds,
            transport=self._transport,
            provider=self.name,
        )
        try:
            text = str(data["choices"][0]["message"]["content"])
        except (KeyError, IndexError, TypeError) as exc:
            raise LLMUnavailable("the OpenAI-compatible endpoint answered in an unexpected shape") from exc
        return Answer(text, self.name, str(data.get("model") or s.model))
