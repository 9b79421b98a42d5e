"""A fake LLM provider on loopback: one Starlette app, served by uvicorn in a thread, that speaks the
wire shape of every registered provider (:data:`WIRES`), so the contract suite drives the real
providers over real HTTP.

It answers what the test sets on :class:`FakeLLM`: the model's ``text`` (HTTP 200), an HTTP
``status`` (its body echoes the caller's key, as some providers' error messages do), or ``hang``
(no answer until the test ends, for timeouts). A request without the key it was given is refused
with 401. Every request is recorded.

For agents it plays a script: :attr:`FakeLLM.script` holds :class:`Scripted` replies, taken one per
request in order (text, and tool calls the model makes), each with its token usage; once it is used
up the fake answers ``text``. An OpenAI request with ``"stream": true`` is answered with
``chat.completion.chunk`` server-sent events (the text word by word, tool calls in pieces, usage
last), as OpenAI streams; an Anthropic one with Messages API events (``message_start``, a
``content_block_start`` / ``content_block_delta`` / ``content_block_stop`` per block: text word by
word as ``text_delta``, tool input in ``input_json_delta`` pieces, then ``message_delta`` with the
output tokens and ``message_stop``), as Anthropic streams.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass(frozen=True)
class Wire:
    """How one provider is spoken: where it posts (under the fake's url), how it sends the key, and
    how a reply is shaped."""

    base_path: str  # appended to the fake's url to make the provider's base_url
    route: str  # the full path the provider posts to
    key_of: Callable[[Request], str]
    reply: Callable[[str, str], dict[str, Any]]  # (text, model) -> body


WIRES: dict[str, Wire] = {
    "anthropic": Wire(
        base_path="",
        route="/v1/messages",
        key_of=lambda r: r.headers.get("x-api-key", ""),
        reply=lambda text, model: {"model": model, "content": [{"type": "text", "text": text}]},
    ),
    "openai": Wire(
        base_path="/v1",
        route="/v1/chat/completions",
        key_of=lambda r: r.headers.get("authorization", "").removeprefix("Bearer "),
        reply=lambda text, model: {
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
        },
    ),
}


@dataclass
class Scripted:
    """One reply of the scripted model: text, and tool calls ``(name, arguments)`` it makes."""

    text: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    input_tokens: int = 10
    output_tokens: int = 5


def _openai_reply(reply: Scripted, model: str, n: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": f"call_{n}_{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
            for i, (name, args) in enumerate(reply.tool_calls)
        ]
    usage = {"prompt_tokens": reply.input_tokens, "completion_tokens": reply.output_tokens}
    return {"model": model, "choices": [{"index": 0, "message": message}], "usage": usage}


def _anthropic_reply(reply: Scripted, model: str, n: int) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
    blocks += [
        {"type": "tool_use", "id": f"toolu_{n}_{i}", "name": name, "input": args}
        for i, (name, args) in enumerate(reply.tool_calls)
    ]
    usage = {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens}
    return {"model": model, "content": blocks, "usage": usage}


def _openai_stream(reply: Scripted, model: str, n: int) -> list[bytes]:
    def chunk(delta: dict[str, Any], **extra: Any) -> bytes:
        body = {"model": model, "choices": [{"index": 0, "delta": delta}], **extra}
        return f"data: {json.dumps(body)}\n\n".encode()

    out = []
    words = reply.text.split(" ")
    for i, word in enumerate(words if reply.text else []):
        out.append(chunk({"content": word if i == 0 else " " + word}))
    for i, (name, args) in enumerate(reply.tool_calls):
        text = json.dumps(args)
        half = len(text) // 2
        first = {
            "index": i,
            "id": f"call_{n}_{i}",
            "type": "function",
            "function": {"name": name, "arguments": text[:half]},
        }
        out.append(chunk({"tool_calls": [first]}))
        out.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": text[half:]}}]}))
    usage = {"prompt_tokens": reply.input_tokens, "completion_tokens": reply.output_tokens}
    out.append(f"data: {json.dumps({'model': model, 'choices': [], 'usage': usage})}\n\n".encode())
    out.append(b"data: [DONE]\n\n")
    return out


def _anthropic_stream(reply: Scripted, model: str, n: int) -> list[bytes]:
    def event(kind: str, **data: Any) -> bytes:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()

    start = {"id": f"msg_{n}", "type": "message", "role": "assistant", "model": model, "content": []}
    start["usage"] = {"input_tokens": reply.input_tokens, "output_tokens": 1}
    out = [event("message_start", message=start), event("ping")]
    index = 0
    if reply.text:
        out.append(event("content_block_start", index=0, content_block={"type": "text", "text": ""}))
        for i, word in enumerate(reply.text.split(" ")):
            delta = {"type": "text_delta", "text": word if i == 0 else " " + word}
            out.append(event("content_block_delta", index=0, delta=delta))
        out.append(event("content_block_stop", index=0))
        index = 1
    for i, (name, args) in enumerate(reply.tool_calls):
        block = {"type": "tool_use", "id": f"toolu_{n}_{i}", "name": name, "input": {}}
        out.append(event("content_block_start", index=index, content_block=block))
        text = json.dumps(args)
        half = len(text) // 2
        for piece in (text[:half], text[half:]):
            out.append(
                event("content_block_delta", index=index, delta={"type": "input_json_delta", "partial_json": piece})
            )
        out.append(event("content_block_stop", index=index))
        index += 1
    stop = "tool_use" if reply.tool_calls else "end_turn"
    out.append(event("message_delta", delta={"stop_reason": stop}, usage={"output_tokens": reply.output_tokens}))
    out.append(event("message_stop"))
    return out


SCRIPTED: dict[str, Callable[[Scripted, str, int], dict[str, Any]]] = {
    "/v1/messages": _anthropic_reply,
    "/v1/chat/completions": _openai_reply,
}


@dataclass
class Seen:
    path: str
    body: dict[str, Any]


@dataclass
class FakeLLM:
    url: str = ""
    key: str = ""
    model: str = "fake-model"
    text: str = "an answer"
    status: int = 200
    raw: bytes | None = None  # sent as is with HTTP 200, for replies in a shape no provider reads
    hang: bool = False
    script: list[Scripted] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    _release: threading.Event = field(default_factory=threading.Event)

    def reset(self, key: str) -> None:
        self.key, self.text, self.status, self.raw, self.hang = key, "an answer", 200, None, False
        self.seen.clear()
        self.script.clear()

    def release(self) -> None:
        """Let every hanging request finish (the client has given up on it by then)."""
        self._release.set()

    def base_url(self, provider: str) -> str:
        return self.url + WIRES[provider].base_path

    def app(self) -> Starlette:
        routes = [Route(wire.route, self._endpoint(wire), methods=["POST"]) for wire in WIRES.values()]
        return Starlette(routes=routes)

    def _endpoint(self, wire: Wire) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Any:
            self.seen.append(Seen(request.url.path, await request.json()))
            sent_key = wire.key_of(request)
            if self.hang:
                await anyio.to_thread.run_sync(self._release.wait, 30)
            if sent_key != self.key:
                return JSONResponse({"error": {"message": f"bad key {sent_key}"}}, status_code=401)
            if self.status != 200:
                echo = {"error": {"message": f"refused for key {sent_key}"}}
                return JSONResponse(echo, status_code=self.status, headers={"retry-after": "1"})
            if self.raw is not None:
                return Response(self.raw, media_type="application/json")
            body = self.seen[-1].body
            if not self.script and not body.get("stream"):
                return JSONResponse(wire.reply(self.text, self.model))
            reply = self.script.pop(0) if self.script else Scripted(text=self.text)
            n = len(self.seen)
            if body.get("stream"):
                stream = _openai_stream if wire.route == "/v1/chat/completions" else _anthropic_stream
                return StreamingResponse(iter(stream(reply, self.model, n)), media_type="text/event-stream")
            return JSONResponse(SCRIPTED[wire.route](reply, self.model, n))

        return endpoint


@contextlib.contextmanager
def running_fake_llm() -> Iterator[FakeLLM]:
    fake = FakeLLM()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    fake.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(fake.app(), log_level="critical", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="fake-llm")
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:  # a bounded wait for the server's own start-up flag
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the fake LLM server did not start")
        time.sleep(0.01)
    try:
        yield fake
    finally:
        fake.release()
        server.should_exit = True
        thread.join(20)
        sock.close()
