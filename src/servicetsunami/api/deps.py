"""Named dependencies of the REST routes. The caller's principal is resolved here and only here:
every route that touches tenant data takes :data:`PrincipalDep`, and the service functions scope
everything by it. No route reads a tenant from a path, a query or a body."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from servicetsunami import logs
from servicetsunami.api.limits import RateLimiter
from servicetsunami.api.pagination import DEFAULT_LIMIT, MAX_LIMIT
from servicetsunami.errors import AuthError
from servicetsunami.services.container import Services
from servicetsunami.tenancy import Principal

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="An access token from POST /auth/login, or an API key (tsk_...)",
)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.limiter
    return limiter


def get_principal(
    services: Annotated[Services, Depends(get_services)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or not credentials.credentials:
        raise AuthError("send 'Authorization: Bearer <token>' with an access token (POST /auth/login) or an API key")
    principal = services.authenticate(credentials.credentials)
    logs.tenant.set(principal.tenant_slug)
    return principal


def query_allowance(
    principal: Annotated[Principal, Depends(get_principal)], limiter: Annotated[RateLimiter, Depends(get_limiter)]
) -> Principal:
    """The principal, after counting one query against its rate limit."""
    limiter.hit("query", principal.tenant_id, principal.subject, what="queries")
    return principal


class PageParams:
    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Most items in one page")] = DEFAULT_LIMIT,
        cursor: Annotated[str | None, Query(max_length=2048, description="next_cursor of the previous page")] = None,
    ) -> None:
        self.limit = limit
        self.cursor = cursor


ServicesDep = Annotated[Services, Depends(get_services)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
QueryPrincipalDep = Annotated[Principal, Depends(query_allowance)]
LimiterDep = Annotated[RateLimiter, Depends(get_limiter)]
PageDep = Annotated[PageParams, Depends()]
