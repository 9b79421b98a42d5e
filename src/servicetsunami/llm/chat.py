"""Chat with tools: the port agents use (several turns, tool calls, usage, streamed text).

Glossary
--------
message
    One turn in the chat-completions shape: ``{"role": "system" | "user" | "assistant" | "tool",
    "content": str}``; an assistant turn may carry ``tool_calls`` (``[{"id", "type": "function",
    "function": {"name", "arguments"}}]``) and a tool turn answers one with ``tool_call_id``.
tool
    What the model may call: a name, a description and a JSON Schema of its arguments (:class:`ToolSpec`).
reply
    What one call returned (:class:`ChatReply`): text, tool calls, and the tokens it used.

Contract
--------
:meth:`ChatModel.chat` sends the messages and tools and returns the reply. With ``on_text`` it
streams: every piece of text is handed to ``on_text`` as it arrives, and the reply still holds the
whole text. It raises only :class:`~servicetsunami.llm.base.LLMUnavailable` (not configured,
refused, unreachable, timed out, unreadable reply), with the provider's name and the HTTP status or
exception class, never a reply body (it may echo the key).

Providers: any OpenAI-compatible ``/chat/completions`` (OpenAI, Databricks Foundation Model APIs and
serving endpoints, vLLM ...), streamed with server-sent events; and Anthropic's Messages API
(``tool_use`` blocks), streamed with its own events (``content_block_delta``: ``text_delta`` pieces
handed to ``on_text`` as they come, ``input_json_delta`` pieces of a tool call's arguments).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from servicetsunami.llm.base import LLMUnavailable
from servicetsunami.llm.http import post_json
from servicetsunami.settings import AISettings

logger = logging.getLogger(__name__)

Message = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model wrote it (it may not parse)


@dataclass(slots=True)
class ChatReply:
    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    model: str | None = None


class ChatModel(Protocol):
    name: str

    def chat(
        self,
        messages: list[Message],
        /,
        *,
        tools: list[ToolSpec],
        max_tokens: int,
        on_text: Callable[[str], None] | None = None,
    ) -> ChatReply: ...


class OpenAIChat:
    """Chat completions with function tools over any OpenAI-compatible endpoint."""

    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        model: str,
        timeout_seconds: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = f"{base_url.rstrip('/')}/chat/completions"
        self.model = model
        self._key = api_key
        self._timeout = timeout_seconds
        # One client per model, kept: its connections are reused by every call (thread-safe).
        self._client = httpx.Client(timeout=timeout_seconds, transport=transport)

    def close(self) -> None:
        self._client.close()

    def _body(self, messages: list[Message], tools: list[ToolSpec], max_tokens: int) -> dict[str, Any]:
        return chat_body(messages, tools, max_tokens) | {"model": self.model}

    def chat(
        self,
        messages: list[Message],
        /,
        *,
        tools: list[ToolSpec],
        max_tokens: int,
        on_text: Callable[[str], None] | None = None,
    ) -> ChatReply:
        body = self._body(messages, tools, max_tokens)
        headers = {"authorization": f"Bearer {self._key}"}
        if on_text is not None:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
            return self._stream(body, headers, on_text)
        data = post_json(
            self.url,
            body,
            headers=headers,
            timeout=self._timeout,
            transport=None,
            provider=self.name,
            client=self._client,
        )
        return parse_chat_completion(data, default_model=self.model)

    def _stream(self, body: dict[str, Any], headers: dict[str, str], on_text: Callable[[str], None]) -> ChatReply:
        reply = ChatReply(text="", model=self.model)
        texts: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        try:
            with self._client.stream("POST", self.url, json=body, headers=headers) as response:
                if response.status_code != 200:
                    logger.warning("LLM provider %s answered HTTP %s", self.name, response.status_code)
                    raise LLMUnavailable(f"{self.name} answered HTTP {response.status_code}")
                for chunk in _sse_data(response.iter_lines()):
                    _take_chunk(chunk, reply, texts, calls, on_text)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            logger.warning("LLM provider %s unreachable: %s", self.name, type(exc).__name__)
            raise LLMUnavailable(f"{self.name} could not be reached") from exc
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise LLMUnavailable("the OpenAI-compatible endpoint streamed an unexpected shape") from exc
        reply.text = "".join(texts)
        reply.tool_calls = [
            ToolCall(c.get("id", f"call_{i}"), c.get("name", ""), c.get("arguments") or "{}")
            for i, c in sorted(calls.items())
        ]
        return reply


def chat_body(messages: list[Message], tools: list[ToolSpec], max_tokens: int) -> dict[str, Any]:
    """A chat-completions request body (without ``model``: some endpoints take it from their URL)."""
    body: dict[str, Any] = {"max_tokens": max_tokens, "messages": messages}
    if tools:
        body["tools"] = [
            {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
            for t in tools
        ]
    return body


def parse_chat_completion(data: dict[str, Any], /, *, default_model: str) -> ChatReply:
    """A ``chat.completion`` answer as a :class:`ChatReply`; :class:`LLMUnavailable` when it is not one."""
    try:
        message = data["choices"][0]["message"]
        calls = [
            ToolCall(str(c["id"]), str(c["function"]["name"]), str(c["function"].get("arguments") or "{}"))
            for c in message.get("tool_calls") or []
        ]
        usage = data.get("usage") or {}
        return ChatReply(
            text=str(message.get("content") or ""),
            tool_calls=calls,
            input_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
            model=str(data.get("model") or default_model),
        )
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise LLMUnavailable("the OpenAI-compatible endpoint answered in an unexpected shape") from exc


def read_chat_stream(
    chunks: Iterator[dict[str, Any]], /, *, on_text: Callable[[str], None], default_model: str
) -> ChatReply:
    """A ``chat.completion.chunk`` stream as a :class:`ChatReply`: each piece of text handed to
    ``on_text`` as it arrives, tool calls assembled from their pieces, usage from the last chunk.
    Shape errors raise ``KeyError``/``TypeError``/``ValueError`` for the caller to translate."""
    reply = ChatReply(text="", model=default_model)
    texts: list[str] = []
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        _take_chunk(chunk, reply, texts, calls, on_text)
    reply.text = "".join(texts)
    reply.tool_calls = [
        ToolCall(c.get("id", f"call_{i}"), c.get("name", ""), c.get("arguments") or "{}")
        for i, c in sorted(calls.items())
    ]
    return reply


def sse_data(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The JSON objects of server-sent ``data:`` lines, up to ``[DONE]``."""
    return _sse_data(lines)


def _sse_data(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        data = json.loads(payload)
        if isinstance(data, dict):
            yield data


def _take_chunk(
    chunk: dict[str, Any],
    reply: ChatReply,
    texts: list[str],
    calls: dict[int, dict[str, str]],
    on_text: Callable[[str], None],
) -> None:
    usage = chunk.get("usage") or {}
    if usage:
        reply.input_tokens = int(usage.get("prompt_tokens") or 0)
        reply.output_tokens = int(usage.get("completion_tokens") or 0)
    if chunk.get("model"):
        reply.model = str(chunk["model"])
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") or {}
        piece = delta.get("content")
        if piece:
            texts.append(str(piece))
            on_text(str(piece))
        for call in delta.get("tool_calls") or []:
            slot = calls.setdefault(int(call.get("index", 0)), {})
            if call.get("id"):
                slot["id"] = str(call["id"])
            function = call.get("function") or {}
            if function.get("name"):
                slot["name"] = slot.get("name", "") + str(function["name"])
            if function.get("arguments"):
                slot["arguments"] = slot.get("arguments", "") + str(function["arguments"])


class AnthropicChat:
    """The Anthropic Messages API with ``tool_use``; with ``on_text``, streamed (``stream: true``)."""

    name = "anthropic"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        model: str,
        timeout_seconds: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = f"{(base_url or 'https://api.anthropic.com').rstrip('/')}/v1/messages"
        self.model = model
        self._key = api_key
        self._timeout = timeout_seconds
        self._client = httpx.Client(timeout=timeout_seconds, transport=transport)

    def close(self) -> None:
        self._client.close()

    def chat(
        self,
        messages: list[Message],
        /,
        *,
        tools: list[ToolSpec],
        max_tokens: int,
        on_text: Callable[[str], None] | None = None,
    ) -> ChatReply:
        system = "\n\n".join(str(m.get("content") or "") for m in messages if m["role"] == "system")
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": max_tokens,
            "system": system,
            "messages": _anthropic_messages(messages),
        }
        if tools:
            body["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in tools
            ]
        headers = {"x-api-key": self._key, "anthropic-version": "2023-06-01"}
        if on_text is not None:
            body["stream"] = True
            return self._stream(body, headers, on_text)
        data = post_json(
            self.url,
            body,
            headers=headers,
            timeout=self._timeout,
            transport=None,
            provider=self.name,
            client=self._client,
        )
        try:
            blocks = data["content"]
            text = "".join(str(b["text"]) for b in blocks if b.get("type") == "text")
            calls = [
                ToolCall(str(b["id"]), str(b["name"]), json.dumps(b.get("input") or {}))
                for b in blocks
                if b.get("type") == "tool_use"
            ]
            usage = data.get("usage") or {}
            reply = ChatReply(
                text=text,
                tool_calls=calls,
                input_tokens=int(usage.get("input_tokens") or 0),
                output_tokens=int(usage.get("output_tokens") or 0),
                model=str(data.get("model") or self.model),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise LLMUnavailable("anthropic answered in an unexpected shape") from exc
        return reply

    def _stream(self, body: dict[str, Any], headers: dict[str, str], on_text: Callable[[str], None]) -> ChatReply:
        """The Messages API's server-sent events: text pieces to ``on_text`` as they arrive, tool calls
        assembled from their ``input_json_delta`` pieces, usage from ``message_start`` and ``message_delta``."""
        reply = ChatReply(text="", model=self.model)
        texts: list[str] = []
        blocks: dict[int, dict[str, Any]] = {}
        started = stopped = False
        try:
            with self._client.stream("POST", self.url, json=body, headers=headers) as response:
                if response.status_code != 200:
                    logger.warning("LLM provider %s answered HTTP %s", self.name, response.status_code)
                    raise LLMUnavailable(f"{self.name} answered HTTP {response.status_code}")
                for event in _sse_data(response.iter_lines()):
                    kind = event.get("type")
                    if kind == "error":
                        raise LLMUnavailable(f"{self.name} stopped the stream with an error")
                    if kind == "message_start":
                        started = True
                        message = event["message"]
                        reply.model = str(message.get("model") or self.model)
                        reply.input_tokens = int((message.get("usage") or {}).get("input_tokens") or 0)
                    elif kind == "content_block_start":
                        blocks[int(event["index"])] = dict(event["content_block"]) | {"json": []}
                    elif kind == "content_block_delta":
                        delta = event["delta"]
                        if delta.get("type") == "text_delta" and delta.get("text"):
                            texts.append(str(delta["text"]))
                            on_text(str(delta["text"]))
                        elif delta.get("type") == "input_json_delta":
                            blocks[int(event["index"])]["json"].append(str(delta.get("partial_json") or ""))
                    elif kind == "message_delta":
                        reply.output_tokens = int((event.get("usage") or {}).get("output_tokens") or 0)
                    elif kind == "message_stop":
                        stopped = True
                        break
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            logger.warning("LLM provider %s unreachable: %s", self.name, type(exc).__name__)
            raise LLMUnavailable(f"{self.name} could not be reached") from exc
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise LLMUnavailable("anthropic streamed an unexpected shape") from exc
        if not (started and stopped):
            raise LLMUnavailable("anthropic's stream ended before its message did")
        reply.text = "".join(texts)
        reply.tool_calls = [
            ToolCall(str(b["id"]), str(b["name"]), "".join(b["json"]) or "{}")
            for _, b in sorted(blocks.items())
            if b.get("type") == "tool_use"
        ]
        return reply


def _anthropic_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Chat-completions turns as Anthropic's: tool calls as ``tool_use`` blocks, tool turns as
    ``tool_result`` blocks of a user turn (consecutive ones merged, as the API asks)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        role = m["role"]
        if role == "system":
            continue
        if role == "tool":
            block = {"type": "tool_result", "tool_use_id": m.get("tool_call_id", ""), "content": str(m.get("content"))}
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
            continue
        if role == "assistant" and m.get("tool_calls"):
            blocks: list[dict[str, Any]] = []
            if m.get("content"):
                blocks.append({"type": "text", "text": str(m["content"])})
            for call in m["tool_calls"]:
                try:
                    arguments = json.loads(call["function"]["arguments"] or "{}")
                except ValueError:
                    arguments = {}
                blocks.append(
                    {"type": "tool_use", "id": call["id"], "name": call["function"]["name"], "input": arguments}
                )
            out.append({"role": "assistant", "content": blocks})
            continue
        out.append({"role": "user" if role == "user" else "assistant", "content": str(m.get("content") or "")})
    return out


def chat_model_from_settings(settings: AISettings, /) -> ChatModel | None:
    """The configured provider as a chat model, or None when none is configured."""
    if settings.provider == "none" or not settings.model:
        return None
    key = settings.api_key.get_secret_value() if settings.api_key else ""
    if settings.provider == "anthropic":
        return AnthropicChat(
            base_url=settings.base_url, api_key=key, model=settings.model, timeout_seconds=settings.timeout_seconds
        )
    return OpenAIChat(
        base_url=settings.base_url or "https://api.openai.com/v1",
        api_key=key,
        model=settings.model,
        timeout_seconds=settings.timeout_seconds,
    )
