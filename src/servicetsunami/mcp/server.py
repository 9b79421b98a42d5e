"""Builds the ServiceTsunami MCP server (fastmcp), the same for stdio and HTTP.

:func:`build_mcp_server` wires the tools (:mod:`servicetsunami.mcp.tools`), the table resources
(:mod:`servicetsunami.mcp.resources`) and its middlewares, outermost first:

1. :class:`~servicetsunami.mcp.errors.ErrorShapingMiddleware`: our errors are shown with their code,
   everything else is masked (``mask_error_details`` as the backstop);
2. :class:`~servicetsunami.mcp.observe.ObservabilityMiddleware`: metrics, request lines and the audit
   entry of each tool call (refusals by the middlewares below included);
3. :class:`~servicetsunami.mcp.auth.TenantLogContextMiddleware`: log lines name the caller's tenant;
4. :class:`~servicetsunami.mcp.auth.RoleGateMiddleware`: a caller sees and calls only the tools of
   its role, of the server's tool set (settings ``tools.*``) and of its API key's tool set;
5. :class:`~servicetsunami.mcp.auth.RateLimitMiddleware` (given a limiter): ``query_sql`` shares
   REST's per-principal query limit.

With ``principal`` the server speaks for that one caller (stdio, in-process tests); local file
paths are then the caller's own. Without it the server expects fastmcp's HTTP app to verify a
bearer API key on each request (:class:`~servicetsunami.mcp.auth.ApiKeyVerifier`), and refuses
local paths.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

from fastmcp import FastMCP
from fastmcp.server.middleware import Middleware
from fastmcp.tools.function_tool import FunctionTool

from servicetsunami import __version__
from servicetsunami.mcp import prompts, resources
from servicetsunami.mcp.auth import (
    ApiKeyVerifier,
    Caller,
    RateLimitMiddleware,
    RoleGateMiddleware,
    TenantLogContextMiddleware,
)
from servicetsunami.mcp.errors import ErrorShapingMiddleware
from servicetsunami.mcp.observe import ObservabilityMiddleware
from servicetsunami.mcp.tools import register_all
from servicetsunami.security.ratelimits import RateLimiter
from servicetsunami.services.container import Services
from servicetsunami.settings import Settings
from servicetsunami.tenancy import Principal
from servicetsunami.toolsets import ToolSet

SERVER_NAME = "ServiceTsunami"
# Lists come in pages of this size, so a cursor a client makes up is refused (invalid params)
# instead of being ignored; every list of this server fits on one page.
LIST_PAGE_SIZE = 200


def use_service_logging() -> None:
    """Send fastmcp's log records through the root logger's handlers (ours: stderr, tenant and
    request id, key redaction) instead of the rich console handlers fastmcp installs on import.
    For entry points, after :func:`servicetsunami.logs.configure_logging`."""
    fastmcp_logger = logging.getLogger("fastmcp")
    for handler in fastmcp_logger.handlers[:]:
        fastmcp_logger.removeHandler(handler)
    fastmcp_logger.propagate = True
    fastmcp_logger.setLevel(logging.NOTSET)


def instructions(settings: Settings, /) -> str:
    caps = settings.query
    return f"""\
ServiceTsunami is your team's lakehouse. Everything you see belongs to one tenant: its own catalog
(named {settings.catalog_prefix}<tenant>) with three schemas:
- bronze: data as it arrived (uploaded files, synced sources), one Delta table per dataset;
- silver: cleaned, typed, deduplicated tables built from bronze;
- gold: business-level tables and views built from silver.

Typical flow: upload_file (lands a file in bronze) -> list_tables -> describe_table -> query_sql.
Name tables as schema.table (bronze.sales); a bare name means bronze; catalog.schema.table works
only for your own catalog. The resources table://<catalog>/<schema>/<table>/schema and .../preview
give a table's description and first rows.

query_sql takes one read-only statement in Databricks SQL (Spark SQL): SELECT, WITH, VALUES,
EXPLAIN, DESCRIBE or SHOW; backticks quote identifiers; time travel with
`SELECT ... FROM bronze.sales VERSION AS OF 3`. File and table functions (read_csv, read_files,
glob, ...), ATTACH, COPY, SET and writes are refused. Results are capped at {caps.max_rows} rows and
{caps.max_bytes / 2**20:g} MiB and stop after {caps.timeout_seconds:g} s; a capped result says truncated=true with a
hint, so aggregate, filter or LIMIT rather than page through raw rows.

Pipelines are jobs: create_job takes a DAG of tasks (sql, sync, transform, gold_refresh, run_job)
with depends_on, retries, timeouts, parameters and an optional Quartz schedule; run_job starts one
and get_job_run_status shows every task; repair_job_run re-runs what failed.

Errors carry a code (e.g. query_refused, not_found, permission_denied) and a message saying what
to change. Analysts can read and query; uploading needs an engineer or admin key."""


# Tools as first built, by what makes one: a tool's schema comes from its function's signature and
# its decorator's arguments, which are the same on every build, while the function itself is a new
# closure over that build's services and caller. Parsing a signature into its JSON schema took about
# 5 ms a tool, half a second a server of 100 tools: each stdio start, each HTTP worker, each REST
# listing of the tools a key sees (mcp/catalog.py). Kept without their function (which would keep
# the first build's services alive), with the signature fastmcp gave it (a Context parameter
# becomes an injected default), which each build's function gets too.
_TOOL_TEMPLATES: dict[tuple[object, ...], tuple[FunctionTool, inspect.Signature | None]] = {}
# The decorator arguments our tools use; a call with any other goes to fastmcp unchanged.
_TEMPLATE_KWARGS = frozenset(
    {"name", "title", "description", "tags", "output_schema", "annotations", "meta", "timeout"}
)


def _no_function() -> None:
    raise AssertionError("a tool template is never called")


class _Server(FastMCP):
    """FastMCP whose ``@server.tool(...)`` reuses the tool a previous build made from the same code
    and arguments, with this build's function in it."""

    def tool(self, name_or_fn: Any = None, **kwargs: Any) -> Any:
        if name_or_fn is not None or set(kwargs) - _TEMPLATE_KWARGS:
            return super().tool(name_or_fn, **kwargs)

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            key = (
                fn.__code__,
                fn.__doc__,
                repr(fn.__defaults__),
                repr(fn.__kwdefaults__),
                repr(fn.__annotations__),
                repr(sorted(kwargs.items())),
                self._support_tasks_by_default,
            )
            found = _TOOL_TEMPLATES.get(key)
            if found is None:
                made = FunctionTool.from_function(fn, task=self._support_tasks_by_default, **kwargs)
                found = made.model_copy(update={"fn": _no_function}), made.fn.__dict__.get("__signature__")
                _TOOL_TEMPLATES[key] = found
            template, signature = found
            if signature is not None:
                fn.__signature__ = signature  # type: ignore[attr-defined]
            self.add_tool(template.model_copy(update={"fn": fn}))
            return fn

        return register


def offered_tools(settings: Settings, /) -> ToolSet:
    """The server's tool set from settings ``tools.*``; ``InvalidInput`` names an unknown tool or preset."""
    tools = settings.tools
    return ToolSet.of(preset=tools.preset, enabled=tools.enabled, disabled=tools.disabled)


def build_mcp_server(
    services: Services, *, principal: Principal | None = None, limiter: RateLimiter | None = None
) -> FastMCP:
    """The MCP server over ``services``: for one fixed ``principal`` (stdio), or per-request
    bearer API keys when ``principal`` is None (mount :func:`servicetsunami.mcp.http.mcp_http_app`).
    With ``limiter``, rate-limited tools count against it (the HTTP door always passes one)."""
    caller = Caller(fixed=principal)
    middleware: list[Middleware] = [
        ErrorShapingMiddleware(),
        ObservabilityMiddleware(services, caller),
        TenantLogContextMiddleware(caller),
        RoleGateMiddleware(caller, offered_tools(services.settings)),
    ]
    if limiter is not None:
        middleware.append(RateLimitMiddleware(caller, limiter))
    server: FastMCP = _Server(
        SERVER_NAME,
        instructions=instructions(services.settings),
        version=__version__,
        auth=None if principal is not None else ApiKeyVerifier(services),
        middleware=middleware,
        mask_error_details=True,
        on_duplicate="error",
        list_page_size=LIST_PAGE_SIZE,
    )
    register_all(server, services, caller)
    resources.register(server, services, caller)
    prompts.register(server, services, caller)
    return server
