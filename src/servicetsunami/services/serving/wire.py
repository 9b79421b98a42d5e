"""The Databricks Model Serving wire shapes of ``POST /serving-endpoints/{name}/invocations``.

Requests, by their key:

- ``messages``: chat completions (``[{"role", "content"}]``); answered as a ``chat.completion``, or
  with ``"stream": true`` as ``chat.completion.chunk`` server-sent events ending in ``[DONE]``;
- ``input``: ResponsesAgent (a string, or items ``{"role", "content"}`` whose content is text or
  ``[{"type": "input_text", "text"}]``); answered as a ``response`` whose ``output`` holds the
  ``function_call`` and ``function_call_output`` items and the ``message``, or streamed as
  ``response.output_text.delta`` and ``response.output_item.done`` events;
- ``dataframe_records`` (``[{col: value}]``), ``dataframe_split`` (``{"columns", "data"}``) and
  ``instances`` (rows, or plain strings): one invocation per row, whose question is its ``messages``,
  or else its ``input``, ``prompt``, ``question``, ``query`` or ``text`` column, or a string row;
  answered as ``{"predictions": [answer, ...]}`` (not streamed).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from servicetsunami.errors import InvalidInput
from servicetsunami.llm.chat import Message

Shape = Literal["chat", "responses", "tabular"]
QUESTION_COLUMNS = ("input", "prompt", "question", "query", "text")
MAX_ROWS = 100
MAX_MESSAGES = 200


@dataclass(frozen=True, slots=True)
class Invocation:
    shape: Shape
    conversations: list[list[Message]]  # one per answer to give
    stream: bool


def parse_request(body: Any, /) -> Invocation:
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidInput("stream must be true or false")
    shapes = [k for k in ("messages", "input", "dataframe_records", "dataframe_split", "instances") if k in body]
    if len(shapes) != 1:
        raise InvalidInput(
            "send exactly one of messages, input, dataframe_records, dataframe_split or instances"
            + (f" (got {', '.join(shapes)})" if shapes else "")
        )
    key = shapes[0]
    if key == "messages":
        return Invocation("chat", [_messages(body["messages"])], stream)
    if key == "input":
        return Invocation("responses", [_responses_input(body["input"])], stream)
    if stream:
        raise InvalidInput("streaming is for messages and input requests, not for tabular ones")
    rows = _tabular_rows(key, body[key])
    return Invocation("tabular", [_row_conversation(row) for row in rows], False)


def _messages(value: Any) -> list[Message]:
    if not isinstance(value, list) or not value:
        raise InvalidInput("messages must be a non-empty list of {role, content}")
    if len(value) > MAX_MESSAGES:
        raise InvalidInput(f"at most {MAX_MESSAGES} messages")
    out: list[Message] = []
    for m in value:
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
            raise InvalidInput("each message is {role: system | user | assistant, content}")
        out.append({"role": m["role"], "content": _text_of(m.get("content"))})
    if out[-1]["role"] != "user":
        raise InvalidInput("the last message must be the user's")
    return out


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [str(p["text"]) for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        if parts:
            return "".join(parts)
    raise InvalidInput("message content must be text, or a list of {type, text} parts")


def _responses_input(value: Any) -> list[Message]:
    if isinstance(value, str):
        value = [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise InvalidInput("input must be text or a non-empty list of {role, content} items")
    items = [i for i in value if not (isinstance(i, dict) and i.get("type") not in (None, "message"))]
    return _messages(items)


def _tabular_rows(key: str, value: Any) -> list[Any]:
    if key == "dataframe_split":
        if not isinstance(value, dict) or not isinstance(value.get("columns"), list):
            raise InvalidInput("dataframe_split is {columns: [...], data: [[...], ...]}")
        columns, data = value["columns"], value.get("data")
        if not isinstance(data, list) or not all(isinstance(r, list) and len(r) == len(columns) for r in data):
            raise InvalidInput("each row of dataframe_split.data has one value per column")
        rows: list[Any] = [dict(zip(columns, r, strict=True)) for r in data]
    else:
        if not isinstance(value, list):
            raise InvalidInput(f"{key} must be a list of rows")
        rows = list(value)
    if not rows or len(rows) > MAX_ROWS:
        raise InvalidInput(f"send between 1 and {MAX_ROWS} rows")
    return rows


def _row_conversation(row: Any) -> list[Message]:
    if isinstance(row, str):
        return _messages([{"role": "user", "content": row}])
    if isinstance(row, dict):
        if "messages" in row:
            return _messages(row["messages"])
        for column in QUESTION_COLUMNS:
            if isinstance(row.get(column), str):
                return _messages([{"role": "user", "content": row[column]}])
    raise InvalidInput(f"each row needs messages, or a text column named one of: {', '.join(QUESTION_COLUMNS)}")


def chat_completion(text: str, *, model: str, input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": input_tokens,
            "completion_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        },
    }


def chat_chunk(chunk_id: str, model: str, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": chunk_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def response_items(added: list[Message]) -> list[dict[str, Any]]:
    """The turns an invocation added, as ResponsesAgent output items."""
    items: list[dict[str, Any]] = []
    for turn in added:
        if turn["role"] == "tool":
            items.append({"type": "function_call_output", "call_id": turn["tool_call_id"], "output": turn["content"]})
            continue
        for call in turn.get("tool_calls") or []:
            items.append(
                {
                    "type": "function_call",
                    "id": f"fc_{uuid.uuid4().hex[:16]}",
                    "call_id": call["id"],
                    "name": call["function"]["name"],
                    "arguments": call["function"]["arguments"],
                }
            )
        if turn.get("content") and not turn.get("tool_calls"):
            items.append(message_item(str(turn["content"])))
    return items


def message_item(text: str, item_id: str | None = None) -> dict[str, Any]:
    return {
        "type": "message",
        "id": item_id or f"msg_{uuid.uuid4().hex[:16]}",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text}],
    }


def response(added: list[Message], *, model: str, input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "id": f"resp_{uuid.uuid4().hex[:24]}",
        "object": "response",
        "created_at": int(time.time()),
        "model": model,
        "output": response_items(added),
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        },
    }
