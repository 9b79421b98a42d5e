"""Named dependencies: the service container and the caller's principal, resolved in one place."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from servicetsunami import logs
from servicetsunami.errors import AuthError
from servicetsunami.services.container import Services
from servicetsunami.tenancy import Principal

_bearer = HTTPBearer(auto_error=False, description="An API key (tsk_...)")


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_principal(
    services: Annotated[Services, Depends(get_services)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or not credentials.credentials:
        raise AuthError("send an API key as 'Authorization: Bearer tsk_...'")
    principal = services.authenticate(credentials.credentials)
    logs.tenant.set(principal.tenant_slug)
    return principal


ServicesDep = Annotated[Services, Depends(get_services)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
