"""Helpers for the MCP tests: sample data, in-memory clients, reading error codes, and a real
uvicorn server for the HTTP door.

The HTTP server serves a parent Starlette app that mounts :func:`servicetsunami.mcp.http.mcp_http_app`
the way ``tsunami serve`` does: a ``Route("/mcp")`` to the MCP app, whose lifespan runs inside
the parent's. It listens on a loopback socket bound here (no port race) and is waited for by
polling with a deadline.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import mcp.types as mcp_types
import uvicorn
from fastmcp import Client
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from servicetsunami.mcp.errors import ERROR_META_KEY
from servicetsunami.mcp.http import mcp_http_app, protected_resource_routes
from servicetsunami.mcp.server import build_mcp_server
from servicetsunami.services.container import Services

SALES_CSV = b"id,region,amount\n1,north,10.5\n2,south,3.25\n3,north,7.0\n"
WAIT_SECONDS = 15.0


def b64(data: bytes, /) -> str:
    return base64.b64encode(data).decode()


@dataclass(frozen=True)
class Keys:
    """Plaintext API keys: tenant ``acme`` (engineer and analyst) and tenant ``globex`` (engineer)."""

    acme_engineer: str
    acme_analyst: str
    globex_engineer: str


@contextlib.asynccontextmanager
async def local_client(services: Services, api_key: str) -> AsyncIterator[Client[Any]]:
    """An in-memory client of the server as ``tsunami mcp`` builds it for ``api_key``."""
    server = build_mcp_server(services, principal=services.authenticate(api_key))
    async with Client(server) as client:
        yield client


def error_code(result: mcp_types.CallToolResult, /) -> str:
    """The ServiceTsunami error code of a failed tool call."""
    assert result.is_error, f"expected a tool error, got {result.structured_content!r}"
    assert result.meta is not None
    return str(result.meta[ERROR_META_KEY]["code"])


def result_text(result: mcp_types.CallToolResult, /) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, mcp_types.TextContent))


async def upload_sales(client: Client[Any], dataset_name: str = "sales", data: bytes = SALES_CSV) -> None:
    result = await client.call_tool_mcp(
        "upload_file",
        {"file_name": f"{dataset_name}.csv", "dataset_name": dataset_name, "file_content": b64(data)},
    )
    assert not result.is_error, result_text(result)


@dataclass(frozen=True)
class HttpServer:
    base_url: str

    @property
    def mcp_url(self) -> str:
        return f"{self.base_url}/mcp"


class InjectKey:
    """Test-only ASGI wrapper: requests that come without ``Authorization`` get ``Bearer <api_key>``.

    For clients that cannot send a header (the conformance suite's CLI); the server behind it
    checks the key exactly as in production."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self.header = (b"authorization", f"Bearer {api_key}".encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not any(name == b"authorization" for name, _ in scope["headers"]):
            scope = {**scope, "headers": [*scope["headers"], self.header]}
        await self.app(scope, receive, send)


def parent_app(services: Services) -> Starlette:
    mcp_app = mcp_http_app(services)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with mcp_app.router.lifespan_context(mcp_app):
            yield

    routes = [Route("/mcp", endpoint=mcp_app), *protected_resource_routes(services.settings)]
    return Starlette(routes=routes, lifespan=lifespan)


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {WAIT_SECONDS} s")
        time.sleep(0.02)


@contextlib.contextmanager
def running_http_server(services: Services, *, inject_key: str | None = None) -> Iterator[HttpServer]:
    """``parent_app`` served on a loopback port; with ``inject_key``, behind :class:`InjectKey`."""
    app: ASGIApp = parent_app(services)
    if inject_key is not None:
        app = InjectKey(app, inject_key)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), "uvicorn did not start")
        assert server.started, "uvicorn stopped during startup"
        yield HttpServer(base_url=f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(WAIT_SECONDS)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop"
