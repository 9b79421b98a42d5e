"""MCP over streamable HTTP, as an ASGI app for ``tsunami serve`` to serve at ``/mcp``.

Every request must carry ``Authorization: Bearer <API key or access JWT>``; it is checked on each request
(401 with ``WWW-Authenticate: Bearer`` otherwise) and decides the tenant and role of that request.
The transport is stateless (no MCP session to hijack or to pin to one worker); each POST gets its
own response stream, so progress notifications still reach the client.

DNS-rebinding protection: a browser page on an attacker's domain that rebinds to our address sends
its own ``Host`` and ``Origin``. :class:`HostOriginGuard` answers 403 unless ``Host`` names this
server (``settings.host``, the host of ``settings.public_url``, localhost, 127.0.0.1, ::1) and any
``Origin`` is this server's own, a loopback page talking to a loopback server, or one listed in
``settings.mcp.allowed_origins``. (The MCP SDK's ``TransportSecuritySettings`` does the same checks
but answers 421 for a bad Host, and fastmcp turns it off in favour of its own guard, which also
answers 421; we want one allowlist built from our settings and a 403 for both.)

Mounting, in the parent Starlette/FastAPI app::

    mcp_app = mcp_http_app(services)          # serves the path "/mcp" itself
    app.router.routes.append(Route("/mcp", endpoint=mcp_app))   # exact path, no /mcp/ redirect
    # and in the parent's lifespan (it starts fastmcp's HTTP session manager):
    async with mcp_app.router.lifespan_context(mcp_app):
        yield
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterable
from ipaddress import ip_address
from typing import Any
from urllib.parse import urlsplit

from fastmcp.server.http import StarletteWithLifespan
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Lifespan, Receive, Scope, Send

from servicetsunami.mcp.server import build_mcp_server
from servicetsunami.security.ratelimits import RateLimiter, open_rate_limiter
from servicetsunami.services.container import Services
from servicetsunami.settings import Settings

logger = logging.getLogger(__name__)

MCP_PATH = "/mcp"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

Origin = tuple[str, str, int]  # scheme, host, port (default ports filled in)


def mcp_http_app(
    services: Services, *, path: str = MCP_PATH, limiter: RateLimiter | None = None
) -> StarletteWithLifespan:
    """The MCP endpoint at ``path`` as a Starlette app; run its lifespan from the parent app.

    Rate-limited tools count against ``limiter`` (the REST door's, so one allowance covers both);
    without one, a limiter over the same shared file is opened."""
    settings = services.settings
    guard = Middleware(
        HostOriginGuard,
        allowed_hosts=allowed_hosts(settings),
        allowed_origins=allowed_origins(settings),
    )
    own_limiter = open_rate_limiter(settings) if limiter is None else None
    app = build_mcp_server(services, limiter=limiter or own_limiter).http_app(
        path=path,
        stateless_http=True,
        json_response=False,
        host_origin_protection=False,  # HostOriginGuard (in middleware) does it, with our allowlist
        middleware=[guard],
    )
    if own_limiter is not None:
        app.router.lifespan_context = _closing(app.router.lifespan_context, own_limiter)
    return app


def _closing(lifespan: Lifespan[Any], limiter: RateLimiter) -> Lifespan[Any]:
    """``lifespan``, then the limiter this app opened for itself is closed."""

    @contextlib.asynccontextmanager
    async def run(app: Any) -> AsyncIterator[Any]:
        try:
            async with lifespan(app) as state:
                yield state
        finally:
            limiter.close()

    return run


def allowed_hosts(settings: Settings, /) -> frozenset[str]:
    hosts = set(LOOPBACK_HOSTS)
    for candidate in (settings.host, urlsplit(settings.resolved_public_url).hostname or ""):
        name = _hostname(candidate)
        if name and not _is_unspecified(name):
            hosts.add(name)
    return frozenset(hosts)


def allowed_origins(settings: Settings, /) -> frozenset[Origin]:
    origins = {_origin(settings.resolved_public_url)}
    origins.update(_origin(value) for value in settings.mcp.allowed_origins)
    return frozenset(origin for origin in origins if origin is not None)


class HostOriginGuard:
    """ASGI middleware: 403 for a ``Host`` or ``Origin`` this server does not answer to."""

    def __init__(self, app: ASGIApp, *, allowed_hosts: Iterable[str], allowed_origins: Iterable[Origin]) -> None:
        self.app = app
        self.allowed_hosts = frozenset(allowed_hosts)
        self.allowed_origins = frozenset(allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = _hostname(headers.get("host", ""))
        if host not in self.allowed_hosts:
            logger.warning("refused an MCP request for Host %r", headers.get("host", ""))
            await _forbidden(
                send,
                "forbidden_host",
                "this server does not answer to that Host; if it is reached through another name, "
                "set TSUNAMI_PUBLIC_URL to that address",
            )
            return
        origin_header = headers.get("origin")
        if origin_header is not None and not self._origin_allowed(origin_header, host):
            logger.warning("refused an MCP request from Origin %r", origin_header)
            await _forbidden(
                send,
                "forbidden_origin",
                "requests from this Origin are not accepted; list it in TSUNAMI_MCP__ALLOWED_ORIGINS "
                "to allow a web page to call this server",
            )
            return
        await self.app(scope, receive, send)

    def _origin_allowed(self, header: str, host: str) -> bool:
        origin = _origin(header)
        if origin is None:  # "null", a path, garbage
            return False
        if origin in self.allowed_origins:
            return True
        # A page on this machine calling a server on this machine is not a rebinding attack.
        return origin[1] in LOOPBACK_HOSTS and host in LOOPBACK_HOSTS


def _hostname(host: str) -> str:
    """``Host`` header or bare host to a comparable name: lower case, no port, no brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else ""
    if host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    return host.rstrip(".")


def _is_unspecified(host: str) -> bool:
    try:
        return ip_address(host).is_unspecified
    except ValueError:
        return False


def _origin(value: str) -> Origin | None:
    try:
        parts = urlsplit(value.strip().rstrip("/"))
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
        return None
    return (parts.scheme, parts.hostname.rstrip("."), port or (443 if parts.scheme == "https" else 80))


async def _forbidden(send: Send, error: str, description: str) -> None:
    body = json.dumps({"error": error, "error_description": description}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
