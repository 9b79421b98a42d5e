"""What the REST door records of each request, in one middleware: Prometheus metrics (requests and
latency per route template), the request line of JSON logs, and the audit entry of a write call.

The route is the template the request matched (``/api/v1/runs/{run_id}``), never the raw path, so
the metrics keep a small number of series; a request that matched nothing counts as ``<unmatched>``.
With ``metrics.enabled`` off nothing is counted here.
A write call is any method other than GET, HEAD and OPTIONS by an authenticated caller; the MCP door
audits its own tool calls (``/mcp`` is skipped here). The web console's pages are served by the same
app: their write calls are recorded with the door ``console``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicetsunami import logs, metrics
from servicetsunami.services.ops import audit

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
UNMATCHED = "<unmatched>"
# Not audited: MCP audits its own tool calls; queries are reads sent as POST (their SQL is guarded
# read-only), the same work MCP's read-only query_sql does.
NOT_AUDITED = frozenset({"/mcp", "/api/v1/query", "/api/v1/datasets/{dataset_id}/query", "/sql"})
API_PREFIXES = (
    "/api/",
    "/serving-endpoints/",
    "/mcp",
    "/metrics",
    "/health",
)  # the API's routes; the others are the console's pages
ERROR_CODE_KEY = "tsunami.error_code"  # the app's error handlers put the answered code in the scope


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, *, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        holder: dict[str, str] = {}
        token = logs.caller.set(holder)

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - started
            method = str(scope.get("method", ""))
            route = route_template(scope)
            if self.services.settings.metrics.enabled:
                metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
                metrics.HTTP_DURATION.labels(method, route).observe(elapsed)
            outcome = "ok" if status < 400 else str(scope.get(ERROR_CODE_KEY) or f"http_{status}")
            logs.request_line("rest", f"{method} {route}", duration_ms=elapsed * 1000, outcome=outcome, status=status)
            if method not in READ_METHODS and holder and route not in NOT_AUDITED:
                await anyio.to_thread.run_sync(
                    lambda: audit.record_call(
                        self.services,
                        door="rest" if route.startswith(API_PREFIXES) else "console",
                        action=f"{method} {route}",
                        target=str(scope.get("path", "")),
                        outcome=outcome,
                    )
                )
            logs.caller.reset(token)


def route_template(scope: Scope, /) -> str:
    """The template of the route the request matched, prefix included (``/api/v1/runs/{run_id}``).

    FastAPI keeps the routes of an included router without its prefix and records the route it
    chose, with the full template, in its own part of the scope; a plain Starlette route (``/mcp``)
    is in ``scope["route"]``."""
    chosen = (scope.get("fastapi") or {}).get("effective_route_context")
    if chosen is not None:
        template = getattr(getattr(chosen, "starlette_route", None), "path_format", None) or getattr(
            chosen, "path_format", None
        )
        if isinstance(template, str):
            return template
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else UNMATCHED
