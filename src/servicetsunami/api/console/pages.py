"""The web console's pages: server-rendered (Jinja2), updated in place by htmx.

The console is a front door like REST, MCP and the CLI: each page calls the same service functions
with the signed-in principal and shows what they return; a refusal (a role, a guard, bad input) is
the service's error, shown with its code. It never renders a secret: it has none to render (keys are
shown once, by the API that creates them).

Scripts come from this server only (htmx 2.0 and the console's own script, in ``static/``), so the
pages' policy allows no inline script; htmx is configured from a ``<meta>`` tag to add no inline
styles and to evaluate nothing. This module mounts every area's pages (data.py, pipelines.py) and
holds signing in and the overview.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from servicetsunami.api.console import admin, agents, consent, data, notebooks, pipelines, session, sources, transforms
from servicetsunami.api.console import vectors as vector_pages
from servicetsunami.api.console.assets import CompressedStatic
from servicetsunami.api.console.charts import day_chart
from servicetsunami.api.console.render import (
    HERE,
    STATIC_PATH,
    ConsoleRoute,
    SessionDep,
    call,
    local,
    page,
)
from servicetsunami.api.deps import ServicesDep, get_limiter
from servicetsunami.api.limits import RateLimiter, login_attempt
from servicetsunami.errors import AuthError, InvalidInput, TsunamiError
from servicetsunami.services.catalog import lakehouse
from servicetsunami.services.container import Services
from servicetsunami.services.ops.activity import daily_activity

SIGNIN_COOKIE = "tsunami_signin"  # the sign-in form's own CSRF value (nobody is signed in yet)
router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
ACTIVITY_DAYS = 14


def install(app: FastAPI) -> None:
    """Mount the console's pages and files on ``app``."""
    app.mount(STATIC_PATH, CompressedStatic(directory=HERE / "static"), name="console-static")
    for area in (
        router,
        data.router,
        sources.router,
        transforms.router,
        notebooks.router,
        pipelines.router,
        agents.router,
        vector_pages.router,
        admin.router,
        consent.router,
    ):
        app.include_router(area)


# --- signing in ---------------------------------------------------------------------------------


@router.get("/signin")
async def signin_page(request: Request, services: ServicesDep, next: str = "/") -> Response:
    if await session.current(request, services) is not None:
        return RedirectResponse(local(next), status_code=303)
    return _signin_form(request, services, next=next)


def _signin_form(
    request: Request, services: Services, *, next: str, refusal: TsunamiError | None = None, status_code: int = 200
) -> Response:
    nonce = secrets.token_urlsafe(16)
    context = {
        "signin_token": nonce,
        "next": local(next),
        "code": refusal.code if refusal else None,
        "message": refusal.message if refusal else None,
    }
    response = page(request, services, None, "signin.html", context, status_code=status_code)
    session.set_cookie(request, response, SIGNIN_COOKIE, nonce, max_age=3600)
    return response


@router.post("/signin")
async def signin(
    request: Request,
    services: ServicesDep,
    limiter: Annotated[RateLimiter, Depends(get_limiter)],
    signin_token: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    api_key: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    expected = request.cookies.get(SIGNIN_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, signin_token):
        refusal: TsunamiError = AuthError("the sign-in form expired: try again")
        return _signin_form(request, services, next=next, refusal=refusal, status_code=403)
    client = request.client.host if request.client else "-"
    try:
        if api_key.strip():
            key = api_key.strip()
            await call(lambda: services.authenticate(key))
            cookies = {session.SESSION_COOKIE: (key, 30 * 24 * 3600)}
        elif email and password:
            with login_attempt(limiter, email, client):
                pair = await session.sign_in_with_password(services, email, password)
            cookies = {
                session.SESSION_COOKIE: (pair.access_token, pair.refresh_expires_in),
                session.REFRESH_COOKIE: (pair.refresh_token, pair.refresh_expires_in),
            }
        else:
            raise InvalidInput("enter your e-mail address and password, or an API key")
    except TsunamiError as exc:
        return _signin_form(request, services, next=next, refusal=exc, status_code=exc.http_status)
    response = RedirectResponse(local(next), status_code=303)
    for name, (value, max_age) in cookies.items():
        session.set_cookie(request, response, name, value, max_age=max_age)
    response.delete_cookie(SIGNIN_COOKIE, path="/")
    return response


@router.post("/signout")
async def signout(current: SessionDep) -> Response:
    response = RedirectResponse("/signin", status_code=303)
    session.clear_cookies(response)
    return response


# --- pages --------------------------------------------------------------------------------------


@router.get("/")
async def overview(request: Request, services: ServicesDep, current: SessionDep) -> Response:
    principal = current.principal
    status = await call(lambda: lakehouse.status(services, principal))
    usage = await call(lambda: lakehouse.usage(services, principal))
    activity = await call(lambda: daily_activity(services, principal, days=ACTIVITY_DAYS))
    context = {"status": status, "usage": usage, "activity": activity, "chart": day_chart(activity)}
    return page(request, services, current, "overview.html", context)
