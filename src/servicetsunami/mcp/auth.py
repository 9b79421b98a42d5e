"""Who is calling, and which tools they may see.

The :class:`~servicetsunami.tenancy.Principal` never comes from a tool argument:

- over stdio it is fixed at launch (the ``TSUNAMI_API_KEY`` of the local user), and
- over HTTP it comes from the bearer credential of each request: an API key or an access JWT from
  ``POST /api/v1/auth/login`` (signature, expiry, issuer and audience checked), the same
  ``Services.authenticate`` the REST door uses. :class:`ApiKeyVerifier` is a fastmcp
  ``TokenVerifier``: fastmcp's HTTP app calls it on every request and answers 401 with a
  ``WWW-Authenticate: Bearer`` challenge when the credential is missing or not accepted. The principal
  rides in the access token's claims and is rebuilt for each tool call. An access token that an MCP
  client got through OAuth (:mod:`servicetsunami.api.oauth`) is accepted too, when it was issued for
  this endpoint as the request reached it (:func:`mcp_resource`: ``<base>/mcp``) and its grant is in
  force.

Tools carry the scopes they need as tags (``"read"``, ``"write"``, ``"manage"``).
:class:`RoleGateMiddleware` hides from ``tools/list`` the tools the caller's role lacks a scope for,
and refuses a call to one anyway with ``permission_denied``; it hides and refuses (``tool_not_enabled``)
the tools outside the server's tool set and the API key's own (:mod:`servicetsunami.toolsets`).
It runs on every transport: fastmcp's own component ``auth=`` checks are skipped over stdio, and a
stdio user may hold an analyst key.

:class:`RateLimitMiddleware` counts the calls of rate-limited tools (:data:`RATE_LIMITED_TOOLS`)
against the same limit, per principal, as the REST door's matching operation: one allowance for
both doors and every worker process (:mod:`servicetsunami.security.ratelimits`); and the calls of
tools with a limit of their own in the settings (``rate_limits.tools``, ``rate_limits.default``).
A refused call is ``rate_limited`` with ``retry_after`` in the error's details.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import mcp.types as mcp_types
from fastmcp.server.auth import AccessToken, TokenVerifier
from fastmcp.server.dependencies import get_access_token, get_http_request
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools.base import Tool, ToolResult
from starlette.datastructures import Headers
from starlette.types import Scope as StarletteScope

from servicetsunami import logs
from servicetsunami.errors import AuthError, PermissionDenied, ToolNotEnabled
from servicetsunami.mcp.errors import DoorError
from servicetsunami.security.ratelimits import RateLimiter, tool_limit
from servicetsunami.services.container import Services
from servicetsunami.settings import Settings
from servicetsunami.tenancy import Principal, Role, Scope
from servicetsunami.toolsets import ToolSet

logger = logging.getLogger(__name__)

_SCOPE_TAGS = {scope.value: scope for scope in Scope}

# tool -> (the limit it counts against, what the refusal calls the calls); REST's names for the same work.
RATE_LIMITED_TOOLS: dict[str, tuple[str, str]] = {"query_sql": ("query", "queries")}


MCP_PATH = "/mcp"


def base_url(settings: Settings, scope: StarletteScope, /) -> str:
    """This server's address as the client reached it: ``settings.public_url`` when set, else the
    request's scheme and ``Host`` (checked by the MCP door's ``HostOriginGuard`` on /mcp)."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = Headers(scope=scope).get("host") or f"{settings.host}:{settings.port}"
    return f"{scope.get('scheme', 'http')}://{host}"


def mcp_resource(settings: Settings, scope: StarletteScope, /) -> str:
    """The MCP endpoint's URL, as OAuth access tokens name it in ``aud`` (RFC 8707 resource)."""
    return base_url(settings, scope) + MCP_PATH


class ApiKeyVerifier(TokenVerifier):
    """Accepts a ServiceTsunami API key or access JWT as the bearer token, checked on every HTTP request."""

    def __init__(self, services: Services) -> None:
        super().__init__()
        self._services = services

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            request = get_http_request()
        except RuntimeError:  # not over HTTP: no resource of ours to bind a token to
            resource = None
        else:
            resource = mcp_resource(self._services.settings, request.scope)
        try:
            principal = await anyio.to_thread.run_sync(lambda: self._services.authenticate(token, resource=resource))
        except AuthError:
            return None  # fastmcp turns this into 401 invalid_token
        return AccessToken(
            token=token,
            client_id=principal.subject,
            subject=principal.subject,
            scopes=sorted(scope.value for scope in principal.scopes),
            claims={
                "tenant_id": principal.tenant_id,
                "tenant_slug": principal.tenant_slug,
                "catalog": principal.catalog,
                "role": principal.role.value,
                "tool_set": None if principal.tools is None else principal.tools.to_json(),
            },
        )


def principal_from_token(token: AccessToken, /) -> Principal:
    """Rebuild the principal that :class:`ApiKeyVerifier` put into ``token``."""
    claims = token.claims
    return Principal(
        tenant_id=str(claims["tenant_id"]),
        tenant_slug=str(claims["tenant_slug"]),
        catalog=str(claims["catalog"]),
        subject=token.subject or token.client_id,
        role=Role(claims["role"]),
        scopes=frozenset(Scope(s) for s in token.scopes),
        tools=ToolSet.from_json(claims.get("tool_set")),
    )


@dataclass(frozen=True, slots=True)
class Caller:
    """Resolves the principal of the current request for tools, resources and middleware.

    ``fixed`` is the launch-time principal of a stdio (or in-process) server; without it the
    principal comes from the request's verified bearer token.
    """

    fixed: Principal | None = None

    @property
    def is_local(self) -> bool:
        """True when the server speaks for one local user (stdio), so local file paths are theirs."""
        return self.fixed is not None

    def principal(self) -> Principal:
        if self.fixed is not None:
            return self.fixed
        token = get_access_token()
        if token is None or not token.claims:
            # Raised inside tool bodies too, so it must already be in the form fastmcp lets through.
            raise DoorError.from_error(AuthError("no credentials: send your API key as 'Authorization: Bearer <key>'"))
        return principal_from_token(token)


def required_scopes(tags: Iterable[str], /) -> frozenset[Scope]:
    return frozenset(_SCOPE_TAGS[tag] for tag in tags if tag in _SCOPE_TAGS)


def allows(principal: Principal, tool: Tool, /, offered: ToolSet | None = None) -> bool:
    """Whether ``principal`` may see and call ``tool``: its role's scopes, the server's tool set
    (``offered``) and the key's own tool set all let it through."""
    if offered is not None and not offered.allows(tool.name):
        return False
    if principal.tools is not None and not principal.tools.allows(tool.name):
        return False
    return required_scopes(tool.tags) <= principal.scopes


def check_allowed(principal: Principal, tool: Tool, /, offered: ToolSet | None = None) -> None:
    """:func:`allows`, as the error a refused call gets: ``tool_not_enabled`` when a tool set hides
    it, ``permission_denied`` when the role lacks a scope."""
    if offered is not None and not offered.allows(tool.name):
        raise ToolNotEnabled(f"the tool {tool.name!r} is not offered by this server (settings tools.*)")
    if principal.tools is not None and not principal.tools.allows(tool.name):
        raise ToolNotEnabled(
            f"the tool {tool.name!r} is not in this API key's tool set ({principal.tools.describe()}); "
            "use a key made for it"
        )
    for scope in sorted(required_scopes(tool.tags)):
        principal.require(scope)


class TenantLogContextMiddleware(Middleware):
    """Puts the caller's tenant into the logging context (``servicetsunami.logs.tenant``) for the
    duration of each request, so service log lines say whose request they belong to."""

    def __init__(self, caller: Caller) -> None:
        self._caller = caller

    async def on_request(self, context: MiddlewareContext[Any], call_next: CallNext[Any, Any]) -> Any:
        try:
            principal = self._caller.principal()
        except DoorError:  # unauthenticated requests are refused elsewhere; nothing to label
            return await call_next(context)
        token = logs.tenant.set(principal.tenant_slug)
        try:
            return await call_next(context)
        finally:
            logs.tenant.reset(token)


class RoleGateMiddleware(Middleware):
    """Hides the tools a caller may not use (its role; the server's tool set ``offered``; its key's
    tool set) and refuses calls to them (see the module docstring)."""

    def __init__(self, caller: Caller, offered: ToolSet | None = None) -> None:
        self._caller = caller
        self._offered = None if offered is None or offered.is_everything else offered

    async def on_list_tools(
        self,
        context: MiddlewareContext[mcp_types.ListToolsRequest],
        call_next: CallNext[mcp_types.ListToolsRequest, Sequence[Tool]],
    ) -> Sequence[Tool]:
        tools = await call_next(context)
        principal = self._caller.principal()
        return [tool for tool in tools if allows(principal, tool, self._offered)]

    async def on_call_tool(
        self,
        context: MiddlewareContext[mcp_types.CallToolRequestParams],
        call_next: CallNext[mcp_types.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        principal = self._caller.principal()
        if context.fastmcp_context is None:  # fastmcp always sets it for tools/call; never guess
            raise PermissionDenied("this call cannot be checked against your role")
        tool = await context.fastmcp_context.fastmcp.get_tool(context.message.name)
        if tool is not None:  # an unknown name falls through to fastmcp's "Unknown tool"
            check_allowed(principal, tool, self._offered)
        return await call_next(context)


class RateLimitMiddleware(Middleware):
    """Counts each call of a tool in :data:`RATE_LIMITED_TOOLS` against its caller's limit, and each
    call of a tool with a limit of its own (settings ``rate_limits.tools`` or ``.default``) against
    that one, per principal and tool."""

    def __init__(self, caller: Caller, limiter: RateLimiter) -> None:
        self._caller = caller
        self._limiter = limiter

    async def on_call_tool(
        self,
        context: MiddlewareContext[mcp_types.CallToolRequestParams],
        call_next: CallNext[mcp_types.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        tool = context.message.name
        limited = RATE_LIMITED_TOOLS.get(tool)
        own = tool_limit(self._limiter, tool)
        if limited is not None or own is not None:
            principal = self._caller.principal()
            if limited is not None:
                name, what = limited
                self._limiter.hit(name, principal.tenant_id, principal.subject, what=what)
            if own is not None:  # counted per tool, also under the default limit
                self._limiter.hit(own, principal.tenant_id, principal.subject, tool, what=f"calls of {tool}")
        return await call_next(context)
