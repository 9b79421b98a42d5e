"""One agent invocation: the bounded loop of model calls and tool calls.

The model is asked with the agent's instructions, the conversation and the agent's tools; each tool
call it makes runs as the caller (:mod:`.tools`) and its result goes back framed as data; the loop
ends when the model answers without a tool call. It is bounded three ways, from settings
(``TSUNAMI_SERVING__MAX_STEPS``, ``__MAX_TOKENS``, ``__TIMEOUT_SECONDS``): past a bound it stops with
``limit_exceeded``. Every tool call is logged and kept in the invocation's trace (its run's result).

``emit`` sees what happens as it happens (the doors stream it): ``{"type": "text", "delta"}`` for
each piece of the answer, ``{"type": "tool_call", "id", "name", "arguments"}`` and
``{"type": "tool_result", "id", "name", "ok", "error_code", "rows", "content"}``.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from servicetsunami.engines.databricks.serving import ModelServing
from servicetsunami.errors import LimitExceeded, ModelUnavailable
from servicetsunami.llm.base import LLMUnavailable
from servicetsunami.llm.chat import ChatModel, Message, OpenAIChat, chat_model_from_settings
from servicetsunami.services.serving.databricks import DatabricksEndpointChat
from servicetsunami.services.serving.tools import call_tool, timed, toolbox
from servicetsunami.settings import AISettings
from servicetsunami.tenancy import Principal

if TYPE_CHECKING:
    from servicetsunami.services.container import Services
    from servicetsunami.services.serving.agents import AgentDefinition

logger = logging.getLogger(__name__)

Emit = Callable[[dict[str, Any]], None]
NO_MODEL = (
    "no model is configured for agents: set TSUNAMI_AI__PROVIDER (anthropic or openai), TSUNAMI_AI__MODEL "
    "and TSUNAMI_AI__API_KEY (MCP sampling needs a connected client, which a served agent does not have)"
)
_models: dict[tuple[str, ...], ChatModel] = {}
_models_lock = threading.Lock()
_MAX_MODELS = 16


@dataclass
class AgentResult:
    text: str
    messages: list[Message]  # the turns this invocation added (assistant, tool), for a conversation
    model: str | None = None
    steps: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    trace: list[dict[str, Any]] = field(default_factory=list)


def resolve_model(svc: Services, spec: str, /) -> ChatModel:
    """The chat model an agent's ``model`` names (see :mod:`.agents`), kept per configuration so its
    connections are reused; :class:`ModelUnavailable` when there is none. On the Databricks engine
    ``endpoint:<name>`` is the workspace's serving endpoint, queried through the engine's client."""
    settings = svc.settings
    ai = settings.ai
    serving = getattr(svc.engine, "serving", None)
    if spec.startswith("endpoint:") and isinstance(serving, ModelServing):
        return DatabricksEndpointChat(serving, spec.removeprefix("endpoint:"))
    if spec.startswith("endpoint:"):
        db = settings.databricks
        if not db.host or db.token is None:
            raise ModelUnavailable(
                f"model {spec!r} is a Databricks serving endpoint: set TSUNAMI_DATABRICKS__HOST and __TOKEN"
            )
        token = db.token.get_secret_value()
        key = ("databricks", db.host, spec, _digest(token), str(ai.timeout_seconds))
        return _cached(
            key,
            lambda: OpenAIChat(
                base_url=f"{db.host.rstrip('/')}/serving-endpoints",
                api_key=token,
                model=spec.removeprefix("endpoint:"),
                timeout_seconds=ai.timeout_seconds,
            ),
        )
    chosen = ai if spec == "default" else ai.model_copy(update={"model": spec})
    if chosen.provider == "none" or not chosen.model:
        raise ModelUnavailable(NO_MODEL)
    secret = chosen.api_key.get_secret_value() if chosen.api_key else ""
    key = (chosen.provider, chosen.base_url, chosen.model, _digest(secret), str(chosen.timeout_seconds))
    return _cached(key, lambda: _from_settings(chosen))


def _from_settings(ai: AISettings) -> ChatModel:
    model = chat_model_from_settings(ai)
    assert model is not None  # checked by the caller
    return model


def _cached(key: tuple[str, ...], build: Callable[[], ChatModel]) -> ChatModel:
    with _models_lock:
        model = _models.get(key)
        if model is None:
            if len(_models) >= _MAX_MODELS:  # settings changed many times: forget the oldest
                _close(_models.pop(next(iter(_models))))
            model = _models[key] = build()
        return model


def _close(model: ChatModel) -> None:
    close = getattr(model, "close", None)
    if close is not None:
        close()


@atexit.register
def _close_all() -> None:
    with _models_lock:
        for model in _models.values():
            _close(model)
        _models.clear()


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def run_agent(
    svc: Services,
    principal: Principal,
    definition: AgentDefinition,
    messages: list[Message],
    /,
    *,
    emit: Emit | None = None,
    model: ChatModel | None = None,
) -> AgentResult:
    """Answer ``messages`` (user and assistant turns) as the agent, calling its tools as ``principal``."""
    bounds = svc.settings.serving
    deadline = time.monotonic() + bounds.timeout_seconds
    chat = model or resolve_model(svc, definition.model)
    tools = toolbox(svc, principal, definition)
    specs = [t.spec for t in tools.values()]
    history: list[Message] = [{"role": "system", "content": definition.instructions}, *messages]
    result = AgentResult(text="", messages=[])
    on_text = (lambda piece: emit({"type": "text", "delta": piece})) if emit is not None else None
    while True:
        if result.steps >= bounds.max_steps:
            raise LimitExceeded(f"the agent used its {bounds.max_steps} steps without answering", limit="max_steps")
        if time.monotonic() >= deadline:
            raise LimitExceeded(f"the agent ran out of its {bounds.timeout_seconds:g} s", limit="timeout_seconds")
        result.steps += 1
        try:
            reply = chat.chat(history, tools=specs, max_tokens=svc.settings.ai.max_tokens, on_text=on_text)
        except LLMUnavailable as exc:
            raise ModelUnavailable(f"the agent's model did not answer: {exc}") from exc
        result.model = reply.model
        result.input_tokens += reply.input_tokens
        result.output_tokens += reply.output_tokens
        if result.input_tokens + result.output_tokens > bounds.max_tokens:
            raise LimitExceeded(f"the agent passed its {bounds.max_tokens} tokens", limit="max_tokens")
        turn: Message = {"role": "assistant", "content": reply.text}
        if not reply.tool_calls:
            result.text = reply.text
            result.messages.append(turn)
            return result
        turn["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in reply.tool_calls
        ]
        history.append(turn)
        result.messages.append(turn)
        for call in reply.tool_calls:
            if time.monotonic() >= deadline:
                raise LimitExceeded(f"the agent ran out of its {bounds.timeout_seconds:g} s", limit="timeout_seconds")
            if emit is not None:
                emit({"type": "tool_call", "id": call.id, "name": call.name, "arguments": call.arguments})
            outcome, elapsed_ms = timed(
                partial(call_tool, tools, call.name, call.arguments, max_chars=bounds.tool_result_chars)
            )
            logger.info(
                "agent tool %s: ok=%s code=%s rows=%s %.1f ms",
                call.name,
                outcome.ok,
                outcome.error_code,
                outcome.rows,
                elapsed_ms,
            )
            result.trace.append(
                {
                    "step": result.steps,
                    "tool": call.name,
                    "arguments": call.arguments[:2000],
                    "ok": outcome.ok,
                    "error_code": outcome.error_code,
                    "rows": outcome.rows,
                    "elapsed_ms": elapsed_ms,
                }
            )
            if emit is not None:
                emit(
                    {
                        "type": "tool_result",
                        "id": call.id,
                        "name": call.name,
                        "ok": outcome.ok,
                        "error_code": outcome.error_code,
                        "rows": outcome.rows,
                        "content": outcome.content,
                    }
                )
            tool_turn: Message = {"role": "tool", "tool_call_id": call.id, "content": outcome.content}
            history.append(tool_turn)
            result.messages.append(tool_turn)
