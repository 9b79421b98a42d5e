"""What the MCP door records of each tool call, in one middleware: the seeds' metrics
(``mcp_requests_total{operation,status}``, ``mcp_request_duration_seconds{operation}``), the request
line of JSON logs, and the audit entry of every call to a tool that is not read-only
(``readOnlyHint``), refused calls included."""

from __future__ import annotations

import time
from typing import Any

import anyio.to_thread
import mcp.types as mcp_types
from fastmcp.exceptions import ToolError
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools.base import ToolResult

from servicetsunami import logs, metrics
from servicetsunami.errors import TsunamiError
from servicetsunami.mcp.auth import Caller
from servicetsunami.mcp.errors import DoorError
from servicetsunami.services.container import Services
from servicetsunami.services.ops import audit


class ObservabilityMiddleware(Middleware):
    def __init__(self, services: Services, caller: Caller) -> None:
        self._services = services
        self._caller = caller

    async def on_call_tool(
        self,
        context: MiddlewareContext[mcp_types.CallToolRequestParams],
        call_next: CallNext[mcp_types.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        name = context.message.name
        started = time.perf_counter()
        outcome = "internal_error"
        token = logs.caller.set(self._identify())
        try:
            result = await call_next(context)
            outcome = "ok"
            return result
        except TsunamiError as exc:
            outcome = exc.code
            raise
        except DoorError as exc:
            outcome = exc.code
            raise
        except ToolError:
            outcome = "tool_error"
            raise
        finally:
            elapsed = time.perf_counter() - started
            known = await self._tool(context, name)
            operation = name if known is not None else "<unknown>"
            if self._services.settings.metrics.enabled:
                metrics.MCP_REQUESTS.labels(operation, outcome).inc()
                metrics.MCP_DURATION.labels(operation).observe(elapsed)
            logs.request_line("mcp", operation, duration_ms=elapsed * 1000, outcome=outcome)
            if known is not None and not known:
                await anyio.to_thread.run_sync(
                    lambda: audit.record_call(
                        self._services, door="mcp", action=f"mcp:{name}", target=None, outcome=outcome
                    )
                )
            logs.caller.reset(token)

    def _identify(self) -> dict[str, str]:
        try:
            principal = self._caller.principal()
        except DoorError:
            return {}
        return {
            "tenant_id": principal.tenant_id,
            "tenant": principal.tenant_slug,
            "subject": principal.subject,
            "role": principal.role.value,
        }

    @staticmethod
    async def _tool(context: MiddlewareContext[Any], name: str) -> bool | None:
        """Whether the tool is read-only; None when no such tool exists."""
        if context.fastmcp_context is None:
            return None
        tool = await context.fastmcp_context.fastmcp.get_tool(name)
        if tool is None:
            return None
        return bool(tool.annotations is not None and tool.annotations.read_only_hint)
