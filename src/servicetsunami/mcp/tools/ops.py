"""``status`` (the service as configured and as it answers: admins), ``metrics`` (the caller's
own tenant's runs, now and over the last hours) and ``get_audit_log`` (the tenant's audit log:
admins, the filters and pages of ``GET /api/v1/audit``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastmcp import FastMCP
from fastmcp.tools.base import ToolResult
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from servicetsunami.mcp.auth import Caller
from servicetsunami.mcp.errors import call_service
from servicetsunami.mcp.results import output_schema, tool_result
from servicetsunami.services.container import Services
from servicetsunami.services.cursors import cursor_key, encode_cursor, timestamp
from servicetsunami.services.models import AuditEntry
from servicetsunami.services.ops import audit
from servicetsunami.services.ops import status as status_service


class AuditPage(BaseModel):
    entries: list[AuditEntry] = Field(description="Newest first")
    next_cursor: str | None = Field(None, description="Pass as cursor for the next page; null on the last page")


def register(server: FastMCP, services: Services, caller: Caller) -> None:
    @server.tool(
        tags={"manage"},
        annotations=ToolAnnotations(title="Service status", read_only_hint=True, open_world_hint=False),
        output_schema=output_schema(status_service.ServiceStatus),
    )
    async def status() -> ToolResult:
        """Version, uptime, engine, store, what is configured (never secrets), each dependency's check,
        and the runs queued or running now."""
        caller.principal()
        return tool_result(await call_service(status_service.service_status, services))

    @server.tool(
        tags={"read"},
        annotations=ToolAnnotations(title="Your tenant's metrics", read_only_hint=True, open_world_hint=False),
        output_schema=output_schema(status_service.TenantMetrics),
    )
    async def metrics(
        hours: Annotated[float, Field(gt=0, le=24 * 31, description="Window for finished runs")] = 24,
    ) -> ToolResult:
        """Your tenant's runs: queued and running now, and those finished in the window by kind and
        state with their mean and longest durations."""
        principal = caller.principal()
        return tool_result(await call_service(status_service.tenant_metrics, services, principal, hours=hours))

    @server.tool(
        tags={"manage"},
        annotations=ToolAnnotations(title="Audit log", read_only_hint=True, open_world_hint=False),
        output_schema=output_schema(AuditPage),
    )
    async def get_audit_log(
        action: Annotated[
            str | None, Field(max_length=100, description="Only this action; ending in * matches a prefix")
        ] = None,
        subject: Annotated[str | None, Field(max_length=200, description="Only this caller (key:<id>)")] = None,
        door: Annotated[str | None, Field(max_length=16, description="rest or mcp")] = None,
        outcome: Annotated[str | None, Field(max_length=64, description="ok, or an error code")] = None,
        since: Annotated[datetime | None, Field(description="Entries at or after this time (ISO 8601)")] = None,
        until: Annotated[datetime | None, Field(description="Entries before this time (ISO 8601)")] = None,
        limit: Annotated[int, Field(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Field(max_length=500, description="next_cursor of the previous page")] = None,
    ) -> ToolResult:
        """Your tenant's audit log, newest first: every write call and admin action."""
        principal = caller.principal()
        after = cursor_key(cursor, timestamp, str)
        found = await call_service(
            audit.list_audit,
            services,
            principal,
            action=action,
            subject=subject,
            door=door,
            outcome=outcome,
            since=since,
            until=until,
            after=after,
            limit=limit,
        )
        entries = found[:limit]
        more = len(found) > limit and entries
        next_cursor = encode_cursor((entries[-1].created_at.isoformat(), entries[-1].id)) if more else None
        return tool_result(AuditPage(entries=entries, next_cursor=next_cursor))
