"""The LLM port: ask a model for text.

Glossary
--------
path
    One way of reaching a model, named by :attr:`LLM.name`: ``sampling`` (the MCP client's own
    model, supplied by the door), or a provider configured in settings (``anthropic``, ``openai``;
    see :mod:`servicetsunami.llm.registry`). The AI tools try their paths in order
    (:class:`~servicetsunami.llm.chain.Chain`) and answer deterministically when none is left.
answer
    The text a path returned, with the path's name and the model that wrote it (:class:`Answer`).

Contract every path honours
---------------------------
:meth:`LLM.complete` sends one system text and one user prompt, asks for at most ``max_tokens``,
and returns an :class:`Answer` whose ``path`` is the path's :attr:`~LLM.name`. It is synchronous and
gives up after the timeout its settings name.

It raises only two things, both signals for the caller rather than errors for the user (they derive
from ``Exception``, not from :class:`~servicetsunami.errors.TsunamiError`, and never reach a door)::

    Exception
    ├── LLMUnavailable   this path cannot answer now: not configured, refused (401, 429, 5xx ...),
    │                    unreachable, timed out, or replied in a shape we cannot read; try the next
    └── SamplingNeeded   the door must ask its client first; the flow stops and is replayed with
                         the answer (MCP input-required rounds, see ``mcp/tools/ai.py``)

A provider turns its HTTP client's failures into :class:`LLMUnavailable` in one place, with
``raise ... from exc``. Its API key comes from settings only and appears neither in the message of
the signal nor in a log line.

Embeddings are a port of their own (``Embedder``, DESIGN.md section 12), not part of this one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    path: str  # the answering path's name: "sampling", "anthropic", "openai" ...
    model: str | None = None  # as the path reported it; sampling may not say


class LLMUnavailable(Exception):  # a signal to the chain, not an error for the user
    """This path cannot answer now (not configured, refused, network, bad reply); try the next."""


class SamplingNeeded(Exception):  # a control-flow signal, not an error
    """The client must be asked (``system``, ``prompt``) before the flow can go on."""

    def __init__(self, system: str, prompt: str, max_tokens: int) -> None:
        super().__init__("sampling needed")
        self.system, self.prompt, self.max_tokens = system, prompt, max_tokens


class LLM(Protocol):
    """One path to a model (see the module docstring for the contract)."""

    name: str

    def complete(self, system: str, prompt: str, /, *, max_tokens: int) -> Answer:
        """The model's answer; raises :class:`LLMUnavailable` (try the next path) or :class:`SamplingNeeded`."""
        ...
