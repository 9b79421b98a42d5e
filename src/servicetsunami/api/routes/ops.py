"""The operator's surface: ``/metrics`` (Prometheus), ``/health/detailed``, the MCP server as REST
sees it (``/api/v1/mcp/tools``, ``/api/v1/mcp/status``), the service's status and the audit log."""

from __future__ import annotations

import hmac
import ipaddress
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from servicetsunami import __version__, metrics
from servicetsunami.api.deps import PageDep, PrincipalDep, ServicesDep
from servicetsunami.api.pagination import Page, cursor_key, page_of, timestamp
from servicetsunami.api.schemas.common import COMMON_ERRORS
from servicetsunami.api.schemas.tables import HealthReport
from servicetsunami.errors import AuthError, NotFound, PermissionDenied
from servicetsunami.services.models import AuditEntry
from servicetsunami.services.ops import audit
from servicetsunami.services.ops import status as status_service
from servicetsunami.tenancy import Scope

root_router = APIRouter()  # at the root, outside the OpenAPI document: /metrics
router = APIRouter(tags=["operations"])  # under /api/v1
health_router = APIRouter(tags=["health"])  # at the root and under /api/v1, like /health


@root_router.get("/metrics", include_in_schema=False)
async def get_metrics(request: Request, services: ServicesDep) -> Response:
    """Prometheus text format. Open to loopback clients; others must send the metrics token."""
    settings = services.settings.metrics
    if not settings.enabled:
        raise NotFound("metrics are turned off (metrics.enabled)")
    if not _loopback(request):
        expected = settings.token.get_secret_value() if settings.token is not None else ""
        if not expected:
            raise PermissionDenied("/metrics answers loopback clients only unless metrics.token is set")
        sent = request.headers.get("authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {expected}".encode()):
            raise AuthError("send 'Authorization: Bearer <metrics.token>' to read /metrics from another host")
    extra = metrics.GaugesAtScrape(lambda: status_service.scrape_gauges(services))
    body = await run_in_threadpool(metrics.exposition, [extra])
    return Response(body, media_type=metrics.CONTENT_TYPE)


@health_router.get(
    "/health/detailed",
    operation_id="health_detailed",
    response_model=HealthReport,
    responses={503: {"model": HealthReport}},
)
async def get_health_detailed(services: ServicesDep, principal: PrincipalDep) -> JSONResponse:
    """Each dependency checked: store, engine, schema migrations, mirror, sandbox, LLM provider; 503
    when one the configuration needs fails. Any authenticated caller."""
    report = await run_in_threadpool(status_service.detailed_health, services)
    return JSONResponse(report.model_dump(mode="json"), status_code=200 if report.status == "ok" else 503)


@router.get(
    "/status", operation_id="service_status", response_model=status_service.ServiceStatus, responses=COMMON_ERRORS
)
async def get_status(services: ServicesDep, principal: PrincipalDep) -> status_service.ServiceStatus:
    """What is configured and reachable, versions, uptime, queue depths (admins; no secrets)."""
    principal.require(Scope.MANAGE)
    return await run_in_threadpool(status_service.service_status, services)


class McpToolInfo(BaseModel):
    name: str
    title: str | None = None
    description: str | None = None
    input_schema: dict[str, Any] = Field(alias="inputSchema")
    output_schema: dict[str, Any] | None = Field(None, alias="outputSchema")
    annotations: dict[str, Any] | None = None

    model_config = {"populate_by_name": True, "serialize_by_alias": True}


class McpTools(BaseModel):
    tools: list[McpToolInfo]
    count: int
    size_bytes: int = Field(description="Size of these tools as JSON, about what tools/list sends a model")


class McpStatus(BaseModel):
    name: str
    version: str
    endpoint: str = Field(description="The streamable HTTP endpoint")
    transports: list[str]
    protocol_versions: list[str]
    authentication: str
    tools_visible: int = Field(description="Tools your key sees")


@router.get("/mcp/tools", operation_id="mcp_tools", response_model=McpTools, responses=COMMON_ERRORS)
async def get_mcp_tools(request: Request, services: ServicesDep, principal: PrincipalDep) -> McpTools:
    """The MCP tools your key sees, with their input and output schemas."""
    from servicetsunami.mcp.catalog import visible_tools

    tools = [McpToolInfo.model_validate(t) for t in await visible_tools(services, principal)]
    size = sum(len(t.model_dump_json(exclude_none=True)) for t in tools)
    return McpTools(tools=tools, count=len(tools), size_bytes=size)


@router.get("/mcp/status", operation_id="mcp_status", response_model=McpStatus, responses=COMMON_ERRORS)
async def get_mcp_status(services: ServicesDep, principal: PrincipalDep) -> McpStatus:
    """The MCP server: endpoint, transports, protocol versions, how to authenticate, your tool count."""
    from servicetsunami.mcp.catalog import visible_tools
    from servicetsunami.mcp.http import MCP_PATH
    from servicetsunami.mcp.protocol import SUPPORTED_PROTOCOL_VERSIONS
    from servicetsunami.mcp.server import SERVER_NAME

    return McpStatus(
        name=SERVER_NAME,
        version=__version__,
        endpoint=services.settings.resolved_public_url + MCP_PATH,
        transports=["streamable-http", "stdio (tsunami mcp)"],
        protocol_versions=list(SUPPORTED_PROTOCOL_VERSIONS),
        authentication="Authorization: Bearer <API key or access token>",
        tools_visible=len(await visible_tools(services, principal)),
    )


@router.get("/audit", operation_id="list_audit", response_model=Page[AuditEntry], responses=COMMON_ERRORS)
async def list_audit(
    services: ServicesDep,
    principal: PrincipalDep,
    page: PageDep,
    action: Annotated[
        str | None, Query(max_length=100, description="Only this action; ending in * matches a prefix (POST *)")
    ] = None,
    subject: Annotated[str | None, Query(max_length=200, description="Only this caller (user:<id>, key:<id>)")] = None,
    door: Annotated[str | None, Query(max_length=16, description="rest or mcp")] = None,
    outcome: Annotated[str | None, Query(max_length=64, description="ok, or an error code")] = None,
    since: Annotated[datetime | None, Query(description="Entries at or after this time (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="Entries before this time (ISO 8601)")] = None,
) -> Page[AuditEntry]:
    """Your tenant's audit log, newest first: every write call and admin action (admins only)."""
    after = cursor_key(page.cursor, timestamp, str)
    found = await run_in_threadpool(
        lambda: audit.list_audit(
            services,
            principal,
            action=action,
            subject=subject,
            door=door,
            outcome=outcome,
            since=since,
            until=until,
            after=after,
            limit=page.limit,
        )
    )
    return page_of(found, key=lambda e: (e.created_at.isoformat(), e.id), limit=page.limit)


def _loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
