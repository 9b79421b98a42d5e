"""The paths the AI tools try, in order (DESIGN.md section 7): the MCP client's own model (sampling),
then the provider configured in settings, then none, which the tools answer deterministically."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from servicetsunami.llm.base import LLM, Answer, LLMUnavailable
from servicetsunami.llm.registry import create_provider
from servicetsunami.settings import AISettings

logger = logging.getLogger(__name__)


class Chain:
    """The paths to try in order; :meth:`ask` returns the first answer, or None for deterministic.

    A path that raised :class:`LLMUnavailable` is dropped for the rest of the flow (with the reason
    in :attr:`skipped`), so a flow that asks several times does not wait on a dead provider again.
    :class:`~servicetsunami.llm.base.SamplingNeeded` passes through to the door.
    """

    def __init__(self, paths: Sequence[LLM], *, max_tokens: int = 1024) -> None:
        self.paths = list(paths)
        self.max_tokens = max_tokens
        self.skipped: list[str] = []

    @classmethod
    def from_settings(cls, settings: AISettings, /, *, sampling: LLM | None = None) -> Chain:
        """``sampling`` (the door's path to its client's model, when the client has one and settings
        allow it), then the configured provider."""
        paths: list[LLM] = []
        if sampling is not None and settings.sampling:
            paths.append(sampling)
        provider = create_provider(settings)
        if provider is not None:
            paths.append(provider)
        return cls(paths, max_tokens=settings.max_tokens)

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
