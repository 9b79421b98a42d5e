"""Blocking agent work as a stream of events for the async doors (server-sent events, WebSocket).

:func:`stream_events` runs ``work(emit)`` in a worker thread and yields ``("event", event)`` for
each event it emits as it happens, then ``("done", result)`` or ``("error", TsunamiError)``. The
work runs to its end even when the consumer goes away (it is bounded by the agent's own limits).
:func:`sse_answer` turns an endpoint invocation's events into Databricks' streamed shapes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.to_thread

from servicetsunami.errors import TsunamiError
from servicetsunami.services.serving import wire
from servicetsunami.services.serving.loop import Emit

if TYPE_CHECKING:
    from servicetsunami.services.container import Services
    from servicetsunami.services.serving.endpoints import Prepared
    from servicetsunami.tenancy import Principal

logger = logging.getLogger(__name__)
T = TypeVar("T")


async def stream_events(work: Callable[[Emit], T], /) -> AsyncIterator[tuple[str, Any]]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def put(kind: str, value: Any) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

    def runner() -> None:
        try:
            put("done", work(lambda event: put("event", event)))
        except TsunamiError as exc:
            put("error", exc)
        except Exception:
            logger.exception("streamed agent work failed")
            put("error", TsunamiError("internal error; see the server log"))

    task = asyncio.ensure_future(anyio.to_thread.run_sync(runner))
    try:
        while True:
            kind, value = await queue.get()
            yield kind, value
            if kind != "event":
                return
    finally:
        if task.done():
            task.result()


def sse(data: Any, /) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


async def sse_answer(svc: Services, principal: Principal, prepared: Prepared, /) -> AsyncIterator[str]:
    """The invocation streamed: ``chat.completion.chunk`` events for ``messages`` requests, Responses
    events for ``input`` ones; an error after the start is sent as ``{"error": {code, message}}``."""
    from servicetsunami.services.serving.endpoints import execute_invocation

    model = prepared.definition.model
    chunk_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    item_id = f"msg_{uuid.uuid4().hex[:16]}"
    chat = prepared.invocation.shape == "chat"
    texts: list[str] = []
    async for kind, value in stream_events(lambda emit: execute_invocation(svc, principal, prepared, emit=emit)):
        if kind == "error":
            yield sse({"error": {"code": value.code, "message": value.message}})
            return
        if kind == "done":
            answer, results = value
            if chat:
                usage = answer["usage"]
                last = wire.chat_chunk(chunk_id, answer["model"], {}, "stop")
                yield sse(last | {"usage": usage})
            else:
                yield sse({"type": "response.output_item.done", "item": wire.message_item(results[0].text, item_id)})
                yield sse({"type": "response.completed", "response": answer})
            yield "data: [DONE]\n\n"
            return
        event: dict[str, Any] = value
        if event["type"] == "text":
            texts.append(event["delta"])
            if chat:
                yield sse(wire.chat_chunk(chunk_id, model, {"role": "assistant", "content": event["delta"]}))
            else:
                yield sse({"type": "response.output_text.delta", "item_id": item_id, "delta": event["delta"]})
        elif not chat and event["type"] == "tool_call":
            item = {"type": "function_call", "id": f"fc_{event['id']}", "call_id": event["id"]}
            yield sse(
                {
                    "type": "response.output_item.done",
                    "item": item | {"name": event["name"], "arguments": event["arguments"]},
                }
            )
        elif not chat and event["type"] == "tool_result":
            output = {"type": "function_call_output", "call_id": event["id"], "output": event["content"]}
            yield sse({"type": "response.output_item.done", "item": output})
