"""The web console's pages: server-rendered (Jinja2), updated in place by htmx.

The console is a front door like REST, MCP and the CLI: each page calls the same service functions
with the signed-in principal and shows what they return; a refusal (a role, a guard, bad input) is
the service's error, shown with its code. It never renders a secret: it has none to render (keys are
shown once, by the API that creates them).

Scripts come from this server only (htmx 2.0 and the console's own script, in ``static/``), so the
pages' policy allows no inline script; htmx is configured from a ``<meta>`` tag to add no inline
styles and to evaluate nothing.
"""

from __future__ import annotations

import pathlib
import secrets
from collections.abc import Callable
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from servicetsunami import __version__
from servicetsunami.api.console import session
from servicetsunami.api.deps import ServicesDep, get_limiter
from servicetsunami.api.limits import RateLimiter, login_attempt
from servicetsunami.api.uploads import receive_upload
from servicetsunami.connectors.files.reader import FileOptions, snake_case
from servicetsunami.errors import AuthError, InvalidInput, TsunamiError
from servicetsunami.services.catalog import datasets, lakehouse, query
from servicetsunami.services.container import Services
from servicetsunami.services.ingestion import uploads
from servicetsunami.tenancy import Scope

HERE = pathlib.Path(__file__).parent
STATIC_PATH = "/console/static"
SIGNIN_COOKIE = "tsunami_signin"  # the sign-in form's own CSRF value (nobody is signed in yet)
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)
T = TypeVar("T")


class SignedOut(Exception):
    """Nobody is signed in: pages answer with a redirect to the sign-in page."""


class Refused(Exception):
    """A request refused before its page ran (a missing or stale CSRF token)."""

    def __init__(self, error: TsunamiError) -> None:
        self.error = error


def install(app: FastAPI) -> None:
    """Mount the console's pages and files on ``app``."""
    app.mount(STATIC_PATH, StaticFiles(directory=HERE / "static"), name="console-static")
    app.include_router(router)

    @app.exception_handler(SignedOut)
    async def signed_out(request: Request, exc: SignedOut) -> Response:
        target = "/signin?next=" + quote(_local(request.url.path), safe="")
        if request.headers.get("hx-request"):  # htmx follows this header with a full page load
            return Response(status_code=204, headers={"hx-redirect": target})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        services: Services = request.app.state.services
        return _error(request, services, None, exc.error)


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
    if not session.is_safe(request):
        token = request.headers.get(session.CSRF_HEADER)
        content_type = request.headers.get("content-type", "")
        if token is None and content_type.startswith("application/x-www-form-urlencoded"):
            token = str((await request.form()).get(session.CSRF_FIELD) or "")
        if token is None and multipart_checks_itself and content_type.startswith("multipart/form-data"):
            current.csrf_checked = False
            return current
        try:
            session.check_csrf(services, current.principal, token)
        except TsunamiError as exc:
            raise Refused(exc) from None
    return current


SessionDep = Annotated[session.ConsoleSession, Depends(signed_in)]
UploadSessionDep = Annotated[session.ConsoleSession, Depends(signed_in_upload)]


def _page(
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


def _error(request: Request, services: Services, current: session.ConsoleSession | None, exc: TsunamiError) -> Response:
    """A service error: the page's error block (htmx swaps it in), or a whole page."""
    template = "_error.html" if request.headers.get("hx-request") else "error.html"
    return _page(
        request, services, current, template, {"code": exc.code, "message": exc.message}, status_code=exc.http_status
    )


async def _call(fn: Callable[[], T]) -> T:
    return await run_in_threadpool(fn)


# --- signing in ---------------------------------------------------------------------------------


@router.get("/signin")
async def signin_page(request: Request, services: ServicesDep, next: str = "/") -> Response:
    if await session.current(request, services) is not None:
        return RedirectResponse(_local(next), status_code=303)
    return _signin_form(request, services, next=next)


def _signin_form(
    request: Request, services: Services, *, next: str, error: TsunamiError | None = None, status_code: int = 200
) -> Response:
    nonce = secrets.token_urlsafe(16)
    context = {
        "signin_token": nonce,
        "next": _local(next),
        "code": error.code if error else None,
        "message": error.message if error else None,
    }
    response = _page(request, services, None, "signin.html", context, status_code=status_code)
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
        error: TsunamiError = AuthError("the sign-in form expired: try again")
        return _signin_form(request, services, next=next, error=error, status_code=403)
    client = request.client.host if request.client else "-"
    try:
        if api_key.strip():
            key = api_key.strip()
            await _call(lambda: services.authenticate(key))
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
        return _signin_form(request, services, next=next, error=exc, status_code=exc.http_status)
    response = RedirectResponse(_local(next), status_code=303)
    for name, (value, max_age) in cookies.items():
        session.set_cookie(request, response, name, value, max_age=max_age)
    response.delete_cookie(SIGNIN_COOKIE, path="/")
    return response


@router.post("/signout")
async def signout(current: SessionDep) -> Response:
    response = RedirectResponse("/signin", status_code=303)
    session.clear_cookies(response)
    return response


def _local(target: str) -> str:
    """Only a path on this site may follow sign-in (no open redirect)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return quote(target, safe="/?=&-_.~")


# --- pages --------------------------------------------------------------------------------------


@router.get("/")
async def overview(request: Request, services: ServicesDep, current: SessionDep) -> Response:
    principal = current.principal
    try:
        status = await _call(lambda: lakehouse.status(services, principal))
        usage = await _call(lambda: lakehouse.usage(services, principal))
    except TsunamiError as exc:
        return _error(request, services, current, exc)
    return _page(request, services, current, "overview.html", {"status": status, "usage": usage})


@router.get("/datasets")
async def datasets_page(request: Request, services: ServicesDep, current: SessionDep) -> Response:
    principal = current.principal
    try:
        items = await _call(lambda: datasets.list_datasets(services, principal))
    except TsunamiError as exc:
        return _error(request, services, current, exc)
    return _page(request, services, current, "datasets.html", {"datasets": items})


@router.post("/datasets")
async def upload(request: Request, services: ServicesDep, current: UploadSessionDep) -> Response:
    """A file from the upload form (multipart, streamed to disk as the REST upload is)."""
    principal = current.principal
    try:
        principal.require(Scope.WRITE)  # before reading a possibly large body
        folder = services.settings.api.upload_dir or services.settings.resolved_home / "tmp" / "uploads"
        received = await receive_upload(
            request.headers.get("content-type", ""), request.stream(), folder=pathlib.Path(folder).expanduser()
        )
        try:
            fields = received.fields
            if not current.csrf_checked:
                session.check_csrf(services, principal, fields.get(session.CSRF_FIELD))
            file_name = received.file_name or ""
            path = received.path
            if path is None:
                raise InvalidInput("choose a file to upload")
            name = fields.get("name") or snake_case(pathlib.PurePath(file_name).stem)
            result = await _call(
                lambda: uploads.upload_file(
                    services, principal, file_name=file_name, dataset_name=name, path=path, options=FileOptions()
                )
            )
        finally:
            received.discard()
    except TsunamiError as exc:
        return _error(request, services, current, exc)
    response = _page(request, services, current, "_uploaded.html", {"result": result})
    response.headers["hx-trigger"] = "datasets-changed"
    return response


@router.get("/datasets/{dataset_id}")
async def dataset_page(request: Request, services: ServicesDep, current: SessionDep, dataset_id: str) -> Response:
    principal = current.principal
    try:
        detail = await _call(lambda: datasets.get_dataset(services, principal, dataset_id))
        preview = await _call(lambda: datasets.preview_dataset(services, principal, dataset_id))
    except TsunamiError as exc:
        return _error(request, services, current, exc)
    return _page(request, services, current, "dataset.html", {"dataset": detail, "result": preview})


@router.get("/sql")
async def sql_page(request: Request, services: ServicesDep, current: SessionDep, q: str = "") -> Response:
    return _page(request, services, current, "sql.html", {"sql": q, "result": None})


@router.post("/sql")
async def run_sql(
    request: Request, services: ServicesDep, current: SessionDep, sql: Annotated[str, Form()] = ""
) -> Response:
    principal = current.principal
    try:
        if not sql.strip():
            raise InvalidInput("write a SQL statement to run")
        result = await _call(lambda: query.query_sql(services, principal, sql))
    except TsunamiError as exc:
        return _error(request, services, current, exc)
    template = "_result.html" if request.headers.get("hx-request") else "sql.html"
    return _page(request, services, current, template, {"sql": sql, "result": result})
