"""Logging in: access token + refresh token, refresh, and who am I."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from servicetsunami.api.deps import LimiterDep, PrincipalDep, ServicesDep
from servicetsunami.api.limits import login_attempt
from servicetsunami.api.schemas.auth import LoginCreate, MePublic, RefreshCreate, TokenPublic
from servicetsunami.api.schemas.common import COMMON_ERRORS, PUBLIC_ERRORS, problem_responses
from servicetsunami.services.identity import users

router = APIRouter(prefix="/auth", tags=["auth"])
_LOGIN_ERRORS = {**PUBLIC_ERRORS, **problem_responses(401)}


@router.post("/login", operation_id="login", response_model=TokenPublic, responses=_LOGIN_ERRORS)
async def login(body: LoginCreate, request: Request, services: ServicesDep, limiter: LimiterDep) -> TokenPublic:
    """Exchange an e-mail address and password for a short-lived access token and a refresh token."""
    client = request.client.host if request.client else "-"
    with login_attempt(limiter, body.email, client):
        return await run_in_threadpool(lambda: users.login(services, email=body.email, password=body.password))


@router.post("/refresh", operation_id="refresh_token", response_model=TokenPublic, responses=_LOGIN_ERRORS)
async def refresh(body: RefreshCreate, services: ServicesDep) -> TokenPublic:
    """Use a refresh token once: it is replaced by the new one returned (reusing it logs you out)."""
    return await run_in_threadpool(lambda: users.refresh(services, refresh_token=body.refresh_token))


@router.get("/me", operation_id="get_me", response_model=MePublic, responses=COMMON_ERRORS)
async def get_me(services: ServicesDep, principal: PrincipalDep) -> MePublic:
    """The caller: tenant, catalog, role and permissions (and the user, for a login)."""
    return await run_in_threadpool(users.me, services, principal)
