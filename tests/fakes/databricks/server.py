"""The fake served by uvicorn on loopback in a thread, with faults injected on request.

Faults (:meth:`FakeDatabricks.inject`) match a method and a path prefix and fire ``times`` times:

- ``429``: Too Many Requests with ``Retry-After``;
- ``503``: Temporarily Unavailable with ``Retry-After``;
- ``slow``: the request is answered after ``delay`` seconds;
- ``drop_before``: the TCP connection is reset before the request is processed;
- ``drop_after``: the request IS processed, then the connection is reset instead of the answer
  (the client cannot know it landed, and retries).

``down = True`` resets every connection until it is set back, like a workspace that cannot be reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from tests.fakes.databricks.app import build_app
from tests.fakes.databricks.state import WorkspaceState

_TRANSPORTS: dict[int, asyncio.Transport] = {}


class _TrackedH11(H11Protocol):
    """uvicorn's h11 protocol, remembering each connection's transport so a fault can reset it."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.client:
            _TRANSPORTS[self.client[1]] = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self.client:
            _TRANSPORTS.pop(self.client[1], None)
        super().connection_lost(exc)


@dataclass
class Fault:
    kind: str
    path: str = "/"
    method: str | None = None
    times: int = 1
    retry_after: int = 1
    delay: float = 0.0
    contains: str | None = None  # only requests whose body holds this text
    fired: int = 0


class FakeDatabricks:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = ""
        self.chunk_rows = 40  # small, so results come back in several chunks
        self.statement_timeout = 60.0
        self.down = False
        self.faults: list[Fault] = []
        self.invalid_sql: list[str] = []  # statements a real warehouse would refuse, or the fake cannot read
        self.internal_errors: list[str] = []
        self.statements_seen: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.oauth_clients: dict[str, str] = {}  # client id -> secret, for OAuth M2M
        self._states: dict[str, WorkspaceState] = {}
        self._lock = threading.Lock()
        self._secret = hashlib.sha256(str(id(self)).encode()).hexdigest()[:16]

    def state(self, token: str) -> WorkspaceState:
        with self._lock:
            if token not in self._states:
                self._states[token] = WorkspaceState.create(token, self.root)
            return self._states[token]

    def oauth_token(self, client_id: str) -> str:
        """The access token of a service principal (stable, so its workspace state is too)."""
        return "oauth-" + hashlib.sha256(f"{self._secret}/{client_id}".encode()).hexdigest()[:24]

    def states(self) -> list[WorkspaceState]:
        with self._lock:
            return list(self._states.values())

    def sign(self, statement_id: str, index: int) -> str:
        return hashlib.sha256(f"{self._secret}/{statement_id}/{index}".encode()).hexdigest()[:20]

    def inject(self, kind: str, *, path: str = "/", method: str | None = None, times: int = 1, **options: Any) -> Fault:
        fault = Fault(kind, path, method, times, **options)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def _take_fault(self, method: str, path: str, body: bytes) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.contains is not None and fault.contains.encode() not in body:
                    continue
                if fault.fired < fault.times and path.startswith(fault.path) and fault.method in (None, method):
                    fault.fired += 1
                    return fault
        return None

    def check_clean(self) -> None:
        """Fail the test that sent SQL the fake (or a warehouse) would refuse."""
        problems = self.invalid_sql + self.internal_errors
        self.invalid_sql, self.internal_errors = [], []
        assert not problems, "the fake received statements it could not accept:\n" + "\n".join(problems)

    # -- the ASGI layer with faults ---------------------------------------------------------

    def asgi(self) -> Any:
        app = build_app(self)

        async def faulty(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            self.requests.append((scope["method"], scope["path"]))
            transport = _TRANSPORTS.get(scope["client"][1]) if scope.get("client") else None
            if self.down and transport is not None:
                transport.abort()
                return
            body = b""
            if any(f.contains is not None for f in self.faults):  # read the body, then hand it on unchanged
                more = True
                while more:
                    message = await receive()
                    body += message.get("body", b"")
                    more = message.get("more_body", False)
                sent = False

                async def replay() -> dict[str, Any]:
                    nonlocal sent
                    if sent:
                        return await receive()
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}

                receive = replay
            fault = self._take_fault(scope["method"], scope["path"], body)
            if fault is None:
                await app(scope, receive, send)
                return
            if fault.kind in ("429", "503"):
                status = int(fault.kind)
                body = b'{"error_code": "%s", "message": "injected"}' % (
                    b"REQUEST_LIMIT_EXCEEDED" if status == 429 else b"TEMPORARILY_UNAVAILABLE"
                )
                headers = [(b"content-type", b"application/json"), (b"retry-after", str(fault.retry_after).encode())]
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            if fault.kind == "slow":
                await asyncio.sleep(fault.delay)
                await app(scope, receive, send)
                return
            if fault.kind == "drop_before" and transport is not None:
                transport.abort()
                return
            if fault.kind == "drop_after" and transport is not None:

                async def swallow(message: dict[str, Any]) -> None:
                    return None

                await app(scope, receive, swallow)
                transport.abort()
                return
            await app(scope, receive, send)

        return faulty


@contextlib.contextmanager
def running_fake(root: Path) -> Iterator[FakeDatabricks]:
    fake = FakeDatabricks(root)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    fake.url = f"http://127.0.0.1:{port}"
    config = uvicorn.Config(fake.asgi(), http=_TrackedH11, log_level="critical", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="fake-databricks")
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the fake Databricks server did not start")
        time.sleep(0.01)
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()
        for state in fake.states():
            for ctx in list((state.contexts or {}).values()):  # execution contexts' kernels
                ctx.close()
            state.engine.close()
