"""LLM providers by name (``TSUNAMI_AI__PROVIDER``); a provider's module is imported only when chosen."""

from __future__ import annotations

from collections.abc import Callable

from servicetsunami.errors import InvalidInput
from servicetsunami.llm.base import LLM
from servicetsunami.settings import AISettings


def _anthropic(settings: AISettings) -> LLM:
    from servicetsunami.llm.anthropic import AnthropicLLM

    return AnthropicLLM(settings)


def _openai(settings: AISettings) -> LLM:
    from servicetsunami.llm.openai import OpenAICompatibleLLM

    return OpenAICompatibleLLM(settings)


PROVIDERS: dict[str, Callable[[AISettings], LLM]] = {"anthropic": _anthropic, "openai": _openai}


def create_provider(settings: AISettings, /) -> LLM | None:
    """The configured provider, or None when none is (``provider="none"``, or no model named)."""
    if settings.provider == "none" or not settings.model:
        return None
    try:
        factory = PROVIDERS[settings.provider]
    except KeyError:
        raise InvalidInput(f"unknown LLM provider {settings.provider!r}; known: {', '.join(PROVIDERS)}") from None
    return factory(settings)
