"""Named dependencies of the REST routes. The caller's principal is resolved here and only here:
every route that touches tenant data takes :data:`PrincipalDep`, and the service functions scope
everything by it. No route reads a tenant from a path, a query or a body."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.requests import HTTPConnection
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from servicetsunami import logs
from servicetsunami.api.limits import RateLimiter
from servicetsunami.api.pagination import DEFAULT_LIMIT, MAX_LIMIT
from servicetsunami.errors import AuthError
from servicetsunami.security.auth import looks_like_api_key, needs_database
from servicetsunami.security.ratelimits import route_limit
from servicetsunami.security.tokens import looks_like_jwt
from servicetsunami.services.container import Services
from servicetsunami.tenancy import Principal

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="An access token from POST /auth/login, or an API key (tsk_...)",
)


# The dependencies are ``async``: FastAPI runs a plain ``def`` dependency in the thread pool, and
# those hops (several per request) cost more CPU than what most of them do.

T = TypeVar("T")


async def read_metadata(services: Services, call: Callable[[], T], /) -> T:
    """Run a service call that only reads metadata (the store, table logs), like ``list_datasets``.

    With the embedded store and lakehouse (a SQLite file in WAL mode, whose readers never wait for
    a writer, and Delta logs on local disk) it runs right here on the event loop: it is mostly
    answered from memory (``store.reads``, the snapshot cache) and the hand-over to a thread costs
    more than the call. When either is across a network (PostgreSQL, Databricks) it goes to the
    thread pool like every other blocking call."""
    if services.local_metadata:
        return call()
    return await run_in_threadpool(call)


async def get_services(connection: HTTPConnection) -> Services:
    """The app's services, for a request or a WebSocket."""
    services: Services = connection.app.state.services
    return services


async def get_limiter(connection: HTTPConnection) -> RateLimiter:
    limiter: RateLimiter = connection.app.state.limiter
    return limiter


async def get_principal(
    services: Annotated[Services, Depends(get_services)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or not credentials.credentials:
        raise AuthError("send 'Authorization: Bearer <token>' with an access token (POST /auth/login) or an API key")
    token = credentials.credentials
    is_jwt = services.tokens is not None and looks_like_jwt(token)
    if services.local_metadata:
        # A signature check or a cached key, and whether the user or key is still in force: read
        # from memory until the store changes, then from the local file (WAL readers never wait).
        inline = is_jwt or not needs_database(services.store, token)
    else:  # that last check is a read across the network on PostgreSQL
        inline = not is_jwt and not looks_like_api_key(token)
    if inline:
        principal = services.authenticate(token)
    else:
        principal = await run_in_threadpool(services.authenticate, token)
    logs.identify(
        tenant_id=principal.tenant_id,
        tenant_slug=principal.tenant_slug,
        subject=principal.subject,
        role=principal.role.value,
    )
    return principal


async def query_allowance(
    principal: Annotated[Principal, Depends(get_principal)], limiter: Annotated[RateLimiter, Depends(get_limiter)]
) -> Principal:
    """The principal, after counting one query against its rate limit."""
    limiter.hit("query", principal.tenant_id, principal.subject, what="queries")
    return principal


async def route_allowance(
    connection: HTTPConnection,
    services: Annotated[Services, Depends(get_services)],
    limiter: Annotated[RateLimiter, Depends(get_limiter)],
) -> None:
    """Counts the request against its route's own limit (settings ``rate_limits.routes``, by
    ``"METHOD /template"``, template or operation id), per principal (per client address before
    login). Every ``/api/v1`` router depends on it; without route limits it costs one lookup. A
    WebSocket (chat) is limited by its own messages, not here."""
    if not limiter.has_routes or not isinstance(connection, Request):
        return
    request = connection
    template, operation = _route_of(request)
    name = route_limit(limiter, f"{request.method} {template}", template, operation)
    if name is None:
        return
    # The header is read here rather than through the bearer scheme, which would mark every route
    # (the public ones too) as needing a token in the OpenAPI document.
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        principal = await get_principal(
            services, HTTPAuthorizationCredentials(scheme=scheme, credentials=token.strip())
        )
        who: tuple[str, ...] = (principal.tenant_id, principal.subject)
    else:
        who = ("client", request.client.host if request.client else "unknown")
    limiter.hit(name, *who, what=f"requests to {request.method} {template}")


def _route_of(request: Request) -> tuple[str, str]:
    """The matched route's full template (``/api/v1/runs/{run_id}``) and operation id. The route in
    the scope is the router's own, without the prefix it was included under: the prefix is what
    the request's path has before the route's own part."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return request.url.path, ""
    rendered = route.path_format
    for name, value in request.path_params.items():
        rendered = rendered.replace("{" + name + "}", str(value))
    path = request.url.path
    template = path[: len(path) - len(rendered)] + route.path if path.endswith(rendered) else path
    return template, route.operation_id or route.name


class PageParams:
    def __init__(self, limit: int, cursor: str | None) -> None:
        self.limit = limit
        self.cursor = cursor


async def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Most items in one page")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2048, description="next_cursor of the previous page")] = None,
) -> PageParams:
    return PageParams(limit, cursor)


ServicesDep = Annotated[Services, Depends(get_services)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
QueryPrincipalDep = Annotated[Principal, Depends(query_allowance)]
LimiterDep = Annotated[RateLimiter, Depends(get_limiter)]
PageDep = Annotated[PageParams, Depends(page_params)]
