"""MCP over streamable HTTP, as an ASGI app for ``tsunami serve`` to serve at ``/mcp``.

Every request must carry ``Authorization: Bearer <API key or access JWT>``; it is checked on each request
and decides the tenant and role of that request. Without one, or with one that is not accepted, the
answer is 401 with a JSON body saying what to send and ``WWW-Authenticate: Bearer
resource_metadata="<base>/.well-known/oauth-protected-resource/mcp"``: the protected-resource
metadata of RFC 9728 (:func:`protected_resource_routes`, served at that path and at the path
without ``/mcp``), which tells MCP clients that this resource takes bearer tokens in the header and
that this server is the OAuth authorization server that issues them (a browser sign-in,
:mod:`servicetsunami.api.oauth`).
The transport is stateless (nothing pinned to one worker); each POST gets its own response stream,
so progress notifications still reach the client. The one exception: a handshake-era client that
declares ``sampling`` gets an ``Mcp-Session-Id`` naming a record every worker can read, so the
server can ask its model (:mod:`servicetsunami.mcp.backchannel`).

DNS-rebinding protection: a browser page on an attacker's domain that rebinds to our address sends
its own ``Host`` and ``Origin``. :class:`HostOriginGuard` answers 403 unless ``Host`` names this
server (``settings.host``, the host of ``settings.public_url``, localhost, 127.0.0.1, ::1) and any
``Origin`` is this server's own, a loopback page talking to a loopback server, or one listed in
``settings.mcp.allowed_origins``. (The MCP SDK's ``TransportSecuritySettings`` does the same checks
but answers 421 for a bad Host, and fastmcp turns it off in favour of its own guard, which also
answers 421; we want one allowlist built from our settings and a 403 for both.)

:class:`McpRequestGate` answers, before the MCP SDK sees the request, what the SDK answers in
unhelpful terms: a method other than POST (405 with a truthful ``Allow: POST``: the transport is
stateless, so there is no GET stream and no session to DELETE), the credential, an unsupported
``MCP-Protocol-Version`` header (400 naming the supported versions), a body over
:data:`MAX_BODY_BYTES` (413 with the limit and where big files go instead), and a body that is not
one JSON-RPC message (parse error or invalid request, :mod:`servicetsunami.mcp.protocol`).

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

import anyio.to_thread
from fastmcp.server.http import StarletteWithLifespan
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Lifespan, Message, Receive, Scope, Send

from servicetsunami.errors import AuthError
from servicetsunami.mcp import backchannel, protocol
from servicetsunami.mcp.auth import MCP_PATH as MCP_PATH  # the path every door names
from servicetsunami.mcp.auth import base_url as base_url
from servicetsunami.mcp.auth import mcp_resource
from servicetsunami.mcp.server import build_mcp_server
from servicetsunami.security.bodies import read_at_most, replay
from servicetsunami.security.ratelimits import RateLimiter, open_rate_limiter
from servicetsunami.services.container import Services
from servicetsunami.services.identity import oauth
from servicetsunami.settings import Settings
from servicetsunami.tenancy import Principal

logger = logging.getLogger(__name__)


class _NoStatelessTerminations(logging.Filter):
    """The SDK logs "Terminating session: None" at INFO at the end of every stateless request: no
    session ends there, so the line says nothing and would fill the log at one line per call."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "Terminating session: None"


logging.getLogger("mcp.server.streamable_http").addFilter(_NoStatelessTerminations())

METADATA_PATH = "/.well-known/oauth-protected-resource"
# The MCP SDK's own ceiling for one message; files this big or bigger go through REST uploads.
MAX_BODY_BYTES = DEFAULT_MAX_REQUEST_BODY_SIZE
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
    sessions = _SessionManagerOf()
    gate = Middleware(McpRequestGate, services=services, path=path, session_manager=sessions)
    own_limiter = open_rate_limiter(settings) if limiter is None else None
    app = build_mcp_server(services, limiter=limiter or own_limiter).http_app(
        path=path,
        stateless_http=True,
        json_response=False,
        host_origin_protection=False,  # HostOriginGuard (in middleware) does it, with our allowlist
        middleware=[guard, gate],
    )
    sessions.app = app
    if own_limiter is not None:
        app.router.lifespan_context = _closing(app.router.lifespan_context, own_limiter)
    return app


class _SessionManagerOf:
    """The MCP SDK's session manager of the app built around the gate (made when its lifespan
    starts), for the POSTs the gate serves on a back channel itself."""

    app: Any = None

    def get(self) -> StreamableHTTPSessionManager:
        for route in getattr(self.app, "routes", []):
            endpoint = getattr(route, "endpoint", None)
            for candidate in (endpoint, getattr(endpoint, "app", None)):
                manager = getattr(candidate, "session_manager", None)
                if isinstance(manager, StreamableHTTPSessionManager):
                    return manager
        raise RuntimeError("the MCP app has no running session manager")


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


def protected_resource_metadata(settings: Settings, scope: Scope, /) -> dict[str, Any]:
    """RFC 9728 metadata of the MCP endpoint: bearer tokens in the header, and (unless
    ``auth.oauth_enabled`` is off) this server as the authorization server that issues them, so an
    MCP client can send its user to sign in with a browser (:mod:`servicetsunami.api.oauth`), and
    the scopes a token may be granted. API keys (``tsunami keys create``) and access tokens of
    ``POST /api/v1/auth/login`` work as well."""
    base = base_url(settings, scope)
    metadata: dict[str, Any] = {
        "resource": f"{base}{MCP_PATH}",
        "bearer_methods_supported": ["header"],
        "resource_name": "ServiceTsunami MCP",
        "resource_documentation": f"{base}/docs",
    }
    if settings.auth.oauth_enabled:
        metadata["authorization_servers"] = [base]
        metadata["scopes_supported"] = list(oauth.TOOL_SCOPES)
    return metadata


def protected_resource_routes(settings: Settings, /) -> list[Route]:
    """The metadata document at ``/.well-known/oauth-protected-resource`` and at its ``/mcp``
    suffixed path (RFC 9728 section 3.1), for the parent app to serve."""

    async def metadata(request: Request) -> JSONResponse:
        return JSONResponse(
            protected_resource_metadata(settings, request.scope), headers={"Cache-Control": "max-age=3600"}
        )

    return [Route(METADATA_PATH, metadata, methods=["GET"]), Route(METADATA_PATH + MCP_PATH, metadata, methods=["GET"])]


NO_KEY_DESCRIPTION = (
    "sign in through OAuth (the resource metadata names the authorization server), or send your API key (or "
    "an access token from POST /api/v1/auth/login) as 'Authorization: Bearer <key>'; make a key with "
    "`tsunami keys create --name NAME --role analyst`"
)
BAD_KEY_DESCRIPTION = (
    "the API key or access token was not accepted ({reason}); check that it was copied whole, that it "
    "was not revoked, and that it belongs to this server (`tsunami keys list` shows the keys of a tenant)"
)


class McpRequestGate:
    """ASGI middleware in front of the MCP SDK at ``path``: method, credential, protocol version,
    body size and JSON-RPC envelope, each refused with an answer that says what to do instead."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        services: Services,
        session_manager: _SessionManagerOf,
        path: str = MCP_PATH,
    ) -> None:
        self.app = app
        self.services = services
        self.path = path
        self.session_manager = session_manager
        self.mailbox = backchannel.Mailbox(services.settings.resolved_home / "mcp")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "")
        if method != "POST":
            await _json(
                send,
                405,
                protocol.error(
                    -32600,
                    f"{method} is not served here: this MCP endpoint has no event stream and no session "
                    "to end (sessions expire on their own); send each JSON-RPC message with POST",
                ),
                [(b"allow", b"POST")],
            )
            return
        headers = Headers(scope=scope)
        principal = await self._authenticated(scope, headers, send)
        if principal is None:
            return
        requested = headers.get("mcp-protocol-version")
        if requested is not None and requested not in protocol.SUPPORTED_PROTOCOL_VERSIONS:
            await _json(send, 400, protocol.unsupported_version_error(requested))
            return
        declared = headers.get("content-length", "")
        body = (
            None
            if declared.isdigit() and int(declared) > MAX_BODY_BYTES
            else await read_at_most(receive, MAX_BODY_BYTES)
        )
        if body is None:
            await _json(send, 413, _too_large())
            return
        answer = protocol.body_error(body)
        if answer is not None:
            await _json(send, 400, answer)
            return
        message = json.loads(body)
        receive = replay(body, receive)
        if requested in MODERN_PROTOCOL_VERSIONS:  # no sessions in that era: input-required rounds instead
            await self.app(scope, receive, send)
            return
        session_id = headers.get(backchannel.SESSION_HEADER)
        if session_id is not None and message.get("method") != "initialize":
            await self._in_session(session_id, message, principal, scope, receive, send)
        elif backchannel.wants_session(message):
            session = backchannel.session_from_initialize(
                message, tenant_id=principal.tenant_id, subject=principal.subject
            )
            session_id = await anyio.to_thread.run_sync(self.mailbox.open_session, session)
            await self.app(scope, receive, _with_header(send, backchannel.SESSION_HEADER, session_id))
        else:
            await self.app(scope, receive, send)

    async def _in_session(
        self,
        session_id: str,
        message: dict[str, Any],
        principal: Principal,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        """A POST naming a session: an answer to one of our requests goes to the mailbox; anything
        else is served on a connection that remembers the client and may ask it back."""
        session = await anyio.to_thread.run_sync(
            lambda: self.mailbox.session(session_id, tenant_id=principal.tenant_id, subject=principal.subject)
        )
        if session is None:
            await _json(
                send,
                404,
                protocol.error(-32600, "unknown or expired Mcp-Session-Id; send initialize again", message.get("id")),
            )
        elif backchannel.is_response(message):
            delivered = await anyio.to_thread.run_sync(self.mailbox.post_reply, session_id, message)
            if delivered:
                await send({"type": "http.response.start", "status": 202, "headers": [(b"content-length", b"0")]})
                await send({"type": "http.response.body", "body": b""})
            else:
                await _json(send, 400, protocol.error(-32600, "invalid request: unusable response id"))
        else:
            manager = self.session_manager.get()
            await backchannel.serve_with_back_channel(manager, self.mailbox, session_id, session, scope, receive, send)

    async def _authenticated(self, scope: Scope, headers: Headers, send: Send) -> Principal | None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        token = token.strip()
        metadata = base_url(self.services.settings, scope) + METADATA_PATH + MCP_PATH
        if scheme.lower() != "bearer" or not token:
            challenge = f'Bearer resource_metadata="{metadata}"'
            body = {"error": "unauthenticated", "error_description": NO_KEY_DESCRIPTION}
            await _json(send, 401, body, _www(challenge))
            return None
        try:
            resource = mcp_resource(self.services.settings, scope)
            return await anyio.to_thread.run_sync(lambda: self.services.authenticate(token, resource=resource))
        except AuthError as exc:
            description = BAD_KEY_DESCRIPTION.format(reason=exc.message)
            quoted = description.replace("\\", "").replace('"', "'")
            challenge = f'Bearer error="invalid_token", error_description="{quoted}", resource_metadata="{metadata}"'
            await _json(send, 401, {"error": "invalid_token", "error_description": description}, _www(challenge))
            return None


def _with_header(send: Send, name: str, value: str) -> Send:
    """``send`` that adds one header to the response's start."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), (name.encode(), value.encode())]}
        await send(message)

    return sending


def _www(challenge: str) -> list[tuple[bytes, bytes]]:
    return [(b"www-authenticate", challenge.encode("latin-1", "replace"))]


def _too_large() -> dict[str, Any]:
    limit_mib = MAX_BODY_BYTES / 2**20
    return protocol.error(
        -32600,
        f"the request body is larger than {limit_mib:g} MiB, the limit of one MCP message; upload big files "
        "with `tsunami upload FILE` or POST /api/v1/datasets (multipart, streamed), then query them here",
        data={"code": "body_too_large", "limit_bytes": MAX_BODY_BYTES},
    )


async def _json(
    send: Send, status: int, payload: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
