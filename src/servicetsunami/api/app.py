"""The ASGI application of ``tsunami serve``: REST at ``/api/v1``, MCP (streamable HTTP) at ``/mcp``,
OpenAPI at ``/docs`` and ``/openapi.json``, liveness at ``/health`` and readiness at ``/ready``.

Errors of ours become ``application/problem+json`` in one handler, with the ``code`` and
``http_status`` their class carries (``rate_limited`` adds ``Retry-After``); any other exception is
logged and answered with a masked 500 by :class:`RequestIdMiddleware`, where the request's id is
still known. Every response carries ``X-Request-ID`` and the security headers of
:class:`~servicetsunami.api.headers.SecurityHeaders`. Bodies are limited by
:class:`~servicetsunami.api.limits.BodySizeLimit`; logins and queries by the app's
:class:`~servicetsunami.api.limits.RateLimiter`.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator

import anyio.to_thread
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicetsunami import __version__, logs
from servicetsunami.api.console import pages as console
from servicetsunami.api.deps import route_allowance
from servicetsunami.api.headers import SecurityHeaders, add_docs_pages
from servicetsunami.api.limits import BodySizeLimit, open_rate_limiter
from servicetsunami.api.oauth import oauth_routes
from servicetsunami.api.observe import ERROR_CODE_KEY, ObservabilityMiddleware
from servicetsunami.api.problems import problem
from servicetsunami.api.routes import (
    agents,
    api_keys,
    auth,
    bundles,
    chat,
    clusters,
    contexts,
    data_sources,
    databricks,
    datasets,
    health,
    notebooks,
    ops,
    pipelines,
    serving,
    statements,
    tables,
    tenants,
    transforms,
    users,
    vectors,
    volumes,
    webhooks,
)
from servicetsunami.api.routes import (
    runs as runs_routes,
)
from servicetsunami.errors import RateLimited, TsunamiError, invalid_arguments
from servicetsunami.services.container import Services
from servicetsunami.services.notebooks import contexts as contexts_service
from servicetsunami.services.runs import service as runs
from servicetsunami.settings import Settings

logger = logging.getLogger(__name__)

# Errors raised by the framework itself (unknown path, wrong method), in the same format.
HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated", 403: "permission_denied"}

OPENAPI_PATH = "/openapi.json"

# Requests are matched against routes in this order: the busiest first.
API_ROUTERS = (
    datasets.router,
    tables.router,
    auth.router,
    tenants.router,
    users.router,
    api_keys.router,
    data_sources.router,
    runs_routes.router,
    statements.router,
    pipelines.router,
    transforms.router,
    databricks.router,
    notebooks.router,
    contexts.router,
    clusters.router,
    volumes.router,
    vectors.router,
    agents.router,
    serving.router,
    chat.router,
    bundles.router,
    health.router,
    ops.health_router,
    ops.router,
    webhooks.router,
)


API_PREFIX = "/api/v1"


class _ApiRouter(APIRouter):
    """The REST API's routers under :data:`API_PREFIX`. A request for another path (a console page,
    ``/mcp``) is passed over with one prefix test, where the app's router would otherwise try each of
    the API's ~150 routes in turn (about 0.3 ms a console request)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] in ("http", "websocket"):
            path, root = scope["path"], scope.get("root_path", "")
            if root and path.startswith(root):  # served under a root path (a proxy's prefix)
                path = path[len(root) :]
            if not path.startswith(API_PREFIX + "/"):
                return Match.NONE, {}
        return super().matches(scope)


class RequestIdMiddleware:
    """Gives every request an id (or keeps the caller's ``X-Request-ID``) for logs and responses.

    An exception no handler answered is logged here and answered with a masked 500 that carries the
    id; it then goes on to the server, as Starlette lets every unhandled exception do."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex[:16]
        token = logs.request_id.set(rid)

        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                response = problem(500, "internal_error", "internal error; see the server log", rid)
                await response(scope, receive, send_with_id)
            raise
        finally:
            logs.request_id.reset(token)


def create_app(settings: Settings, *, services: Services | None = None) -> FastAPI:
    """Build the app. With ``services`` given (tests), the caller owns their lifetime."""
    from servicetsunami.mcp.http import mcp_http_app, protected_resource_routes

    owned = services is None
    services = services or Services.open(settings)
    limiter = open_rate_limiter(settings)
    mcp_app = mcp_http_app(services, limiter=limiter)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Blocking calls run in this many threads (anyio's default is 40, which under load spends
        # more time handing the interpreter lock around than working).
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.serve.threads
        if owned:  # a worker of `tsunami serve`: it claims runs queued by any process
            runs.ensure_worker(services)
        async with mcp_lifespan(mcp_app):
            yield
        await anyio.to_thread.run_sync(contexts_service.close_all, services)  # their kernels stop with us
        app.state.limiter.close()
        if owned:
            services.close()

    app = FastAPI(
        title="ServiceTsunami",
        version=__version__,
        description="Integration brain for data and AI agents: a lakehouse per tenant, guarded SQL, MCP.",
        lifespan=lifespan,
        docs_url=None,  # served by add_docs_pages, with the policy the page needs
        redoc_url=None,
        openapi_url=OPENAPI_PATH,
        generate_unique_id_function=lambda route: route.operation_id or route.name,
    )
    app.state.services = services
    app.state.limiter = limiter
    add_docs_pages(app, openapi_url=OPENAPI_PATH)
    app.include_router(health.router, include_in_schema=False)  # probes at the root too
    app.include_router(ops.health_router, include_in_schema=False)
    app.include_router(ops.root_router)  # /metrics
    app.include_router(serving.invocations_router)  # Databricks' own path, so Model Serving clients only change host
    api = _ApiRouter()
    for router in API_ROUTERS:  # each route counts against its own limit, when it has one
        api.include_router(router, dependencies=[Depends(route_allowance)])
    app.include_router(api, prefix=API_PREFIX)
    # mcp_app serves exactly /mcp itself; a Route (not a mount) avoids a /mcp -> /mcp/ redirect.
    app.router.routes.append(Route("/mcp", endpoint=mcp_app))
    app.router.routes.extend(protected_resource_routes(settings))  # RFC 9728, named by /mcp's 401s
    if settings.auth.oauth_enabled:  # the authorization server that metadata names
        app.router.routes.extend(oauth_routes(services, limiter))
    console.install(app)  # the web console at /, its files under /console/static
    app.add_middleware(
        BodySizeLimit, max_body_bytes=settings.api.max_body_bytes, max_upload_bytes=settings.ingest.max_upload_bytes
    )
    app.add_middleware(ObservabilityMiddleware, services=services)
    app.add_middleware(RequestIdMiddleware)
    if settings.cors.enabled:
        from starlette.middleware.cors import CORSMiddleware

        wildcard = "*" in settings.cors.origins
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors.origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID", "Mcp-Session-Id", "Mcp-Protocol-Version"],
            expose_headers=["X-Request-ID", "Retry-After", "Mcp-Session-Id"],
            allow_credentials=settings.cors.allow_credentials and not wildcard,
            max_age=settings.cors.max_age_seconds,
        )
    app.add_middleware(SecurityHeaders)

    @app.exception_handler(TsunamiError)
    async def tsunami_error(request: Request, exc: TsunamiError) -> JSONResponse:
        retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
        request.scope[ERROR_CODE_KEY] = exc.code
        return problem(exc.http_status, exc.code, exc.message, logs.request_id.get(), retry_after=retry_after)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        request.scope[ERROR_CODE_KEY] = code
        return problem(exc.status_code, code, str(exc.detail), logs.request_id.get())

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        invalid = invalid_arguments(list(exc.errors()), what="request")
        request.scope[ERROR_CODE_KEY] = invalid.code
        return problem(422, invalid.code, invalid.message, logs.request_id.get())

    return app


def worker_app() -> FastAPI:
    """The app of one worker process of ``tsunami serve --workers N`` (uvicorn calls this in each).

    The settings come from the environment, where the serving command put its ``--host`` and
    ``--port``; the store is already migrated and bootstrapped. Each worker claims runs (syncs, the
    mirror's replays) from the shared store; exactly one executes each."""
    from servicetsunami.mcp.server import use_service_logging

    settings = Settings()
    logs.configure_logging(settings.log_level, json_lines=settings.log_format == "json")
    use_service_logging()
    return create_app(settings)


@contextlib.asynccontextmanager
async def mcp_lifespan(mcp_app: ASGIApp) -> AsyncIterator[None]:
    """Run the mounted MCP app's own lifespan (its session manager) inside ours."""
    lifespan = getattr(getattr(mcp_app, "router", None), "lifespan_context", None)
    if lifespan is None:
        yield
        return
    async with lifespan(mcp_app):
        yield
