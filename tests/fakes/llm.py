"""A fake LLM provider on loopback: one Starlette app, served by uvicorn in a thread, that speaks the
wire shape of every registered provider (:data:`WIRES`), so the contract suite drives the real
providers over real HTTP.

It answers what the test sets on :class:`FakeLLM`: the model's ``text`` (HTTP 200), an HTTP
``status`` (its body echoes the caller's key, as some providers' error messages do), or ``hang``
(no answer until the test ends, for timeouts). A request without the key it was given is refused
with 401. Every request is recorded.
"""

from __future__ import annotations

import contextlib
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
from starlette.responses import JSONResponse, Response
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
    seen: list[Seen] = field(default_factory=list)
    _release: threading.Event = field(default_factory=threading.Event)

    def reset(self, key: str) -> None:
        self.key, self.text, self.status, self.raw, self.hang = key, "an answer", 200, None, False
        self.seen.clear()

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
            return JSONResponse(wire.reply(self.text, self.model))

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
