"""What every console page shares: the templates, the pages' content policy, the session
dependencies (a signed-in person, and the CSRF check of anything that changes something), and
rendering a page or a service's error."""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from servicetsunami import __version__, logs
from servicetsunami.api.console import session
from servicetsunami.api.deps import ServicesDep
from servicetsunami.api.observe import ERROR_CODE_KEY
from servicetsunami.errors import TsunamiError
from servicetsunami.services.container import Services
from servicetsunami.tenancy import Scope

HERE = pathlib.Path(__file__).parent
STATIC_PATH = "/console/static"
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

templates = Jinja2Templates(directory=HERE / "templates")
T = TypeVar("T")


class SignedOut(Exception):
    """Nobody is signed in: pages answer with a redirect to the sign-in page."""


class ConsoleRoute(APIRoute):
    """A console page: a service's refusal (a role, the guard, bad input, a stale CSRF token) is
    rendered as the page's error block, with its code and status, instead of the API's problem
    document; nobody signed in is sent to the sign-in page and back."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except SignedOut:
                target = "/signin?next=" + quote(local(request.url.path), safe="")
                if request.headers.get("hx-request"):  # htmx follows this header with a full page load
                    return Response(status_code=204, headers={"hx-redirect": target})
                return RedirectResponse(target, status_code=303)
            except TsunamiError as exc:
                request.scope[ERROR_CODE_KEY] = exc.code
                services: Services = request.app.state.services
                return error(request, services, getattr(request.state, "console_session", None), exc)

        return handle


async def signed_in(request: Request, services: ServicesDep) -> session.ConsoleSession:
    """The session; a request that changes anything must carry the page's CSRF token, in the
    header (htmx) or in a urlencoded form's field."""
    return await _signed_in(request, services, multipart_checks_itself=False)


async def signed_in_upload(request: Request, services: ServicesDep) -> session.ConsoleSession:
    """As :func:`signed_in`, except that a multipart form without the header is let through for
    the route to check its ``csrf_token`` field before it keeps anything (the body is streamed to
    disk, so it cannot be read here first)."""
    return await _signed_in(request, services, multipart_checks_itself=True)


async def _signed_in(request: Request, services: Services, *, multipart_checks_itself: bool) -> session.ConsoleSession:
    current = await session.current(request, services)
    if current is None:
        raise SignedOut
    request.state.console_session = current  # for the error block, when the page is refused
    principal = current.principal
    logs.identify(
        tenant_id=principal.tenant_id,
        tenant_slug=principal.tenant_slug,
        subject=principal.subject,
        role=principal.role.value,
    )
    if not session.is_safe(request):
        token = request.headers.get(session.CSRF_HEADER)
        content_type = request.headers.get("content-type", "")
        if token is None and content_type.startswith("application/x-www-form-urlencoded"):
            token = str((await request.form()).get(session.CSRF_FIELD) or "")
        if token is None and multipart_checks_itself and content_type.startswith("multipart/form-data"):
            current.csrf_checked = False
            return current
        session.check_csrf(services, current.principal, token)
    return current


SessionDep = Annotated[session.ConsoleSession, Depends(signed_in)]
UploadSessionDep = Annotated[session.ConsoleSession, Depends(signed_in_upload)]


def page(
    request: Request,
    services: Services,
    current: session.ConsoleSession | None,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
) -> HTMLResponse:
    principal = current.principal if current is not None else None
    base = {
        "principal": principal,
        "can_write": principal is not None and principal.can(Scope.WRITE),
        "csrf": session.csrf_token(services, principal) if principal is not None else "",
        "version": __version__,
        "static": STATIC_PATH,
        "path": request.url.path,
        "engine": services.engine.kind,
    }
    response = templates.TemplateResponse(request, template, {**base, **context}, status_code=status_code)
    response.headers["content-security-policy"] = PAGE_POLICY
    if current is not None:
        current.apply(request, response)
    return response


def error(request: Request, services: Services, current: session.ConsoleSession | None, exc: TsunamiError) -> Response:
    """A service error: the page's error block (htmx swaps it in), or a whole page."""
    template = "_error.html" if request.headers.get("hx-request") else "error.html"
    return page(
        request, services, current, template, {"code": exc.code, "message": exc.message}, status_code=exc.http_status
    )


async def call(fn: Callable[[], T]) -> T:
    return await run_in_threadpool(fn)


def local(target: str) -> str:
    """Only a path on this site may follow sign-in (no open redirect)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return quote(target, safe="/?=&-_.~")
