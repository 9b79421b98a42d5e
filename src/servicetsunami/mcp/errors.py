"""How errors reach an MCP client.

Our own errors (:class:`~servicetsunami.errors.TsunamiError`) are written for the caller, so their
message and ``code`` are shown: a tool call returns an error result (``isError: true``, the message
and code as text, ``{"code", "message", "details"}`` under ``_meta["servicetsunami/error"]``); a
resource read fails with a JSON-RPC error whose ``data`` holds the same dict (invalid params when the
error's class answers REST with a 4xx, internal error otherwise). Anything else is a bug
or an outage: it is logged here with its traceback and the client sees only
"internal error; see server logs". A call to a tool that does not exist is a protocol error
(JSON-RPC invalid params), not a tool result. Arguments that do not fit a tool's signature get an
``invalid_input`` error result naming each argument and what is wrong with it, in our words.

Service calls block (DuckDB, delta-rs, the system store), so :func:`call_service` runs them in a
worker thread; it is also the one place where exceptions are sorted into "show" and "mask".
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import anyio.to_thread
import mcp.types as mcp_types
from fastmcp.exceptions import DisabledError, FastMCPError, NotFoundError
from fastmcp.exceptions import ValidationError as ArgumentsError
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools.base import ToolResult
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError as PydanticValidationError

from servicetsunami.errors import TsunamiError, invalid_arguments

logger = logging.getLogger(__name__)

INTERNAL_ERROR_CODE = "internal_error"
INTERNAL_ERROR_MESSAGE = "internal error; see server logs"
ERROR_META_KEY = "servicetsunami/error"

P = ParamSpec("P")
T = TypeVar("T")


class DoorError(FastMCPError):
    """A failure on its way to the client, already judged safe to show.

    Being a :class:`FastMCPError`, fastmcp passes it through unmasked. fastmcp logs it at DEBUG
    only: the ones worth a traceback were logged before being turned into this.
    """

    def __init__(
        self, code: str, message: str, *, details: dict[str, Any] | None = None, caller_fault: bool = False
    ) -> None:
        super().__init__(message, log_level=logging.DEBUG)
        self.code = code
        self.message = message
        self.details = details or {}
        self.caller_fault = caller_fault

    @classmethod
    def from_error(cls, exc: TsunamiError) -> DoorError:
        # A 4xx is something the caller can fix by asking differently: JSON-RPC's invalid params.
        caller_fault = 400 <= exc.http_status < 500
        return cls(exc.code, exc.message, details=exc.details, caller_fault=caller_fault)

    @classmethod
    def internal(cls) -> DoorError:
        return cls(INTERNAL_ERROR_CODE, INTERNAL_ERROR_MESSAGE)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            out["details"] = self.details
        return out

    def to_tool_result(self) -> ToolResult:
        return ToolResult(
            content=f"{self.message} (error code: {self.code})",
            meta={ERROR_META_KEY: self.to_dict()},
            is_error=True,
        )

    def to_mcp_error(self) -> MCPError:
        code = mcp_types.INVALID_PARAMS if self.caller_fault else mcp_types.INTERNAL_ERROR
        return MCPError(code=code, message=self.message, data=self.to_dict())


async def _argument_names(context: MiddlewareContext[mcp_types.CallToolRequestParams]) -> list[str] | None:
    if context.fastmcp_context is None:
        return None
    tool = await context.fastmcp_context.fastmcp.get_tool(context.message.name)
    properties = (tool.parameters or {}).get("properties", {}) if tool is not None else {}
    return sorted(properties) or None


def unknown_tool(name: str, /) -> MCPError:
    return MCPError(
        code=mcp_types.INVALID_PARAMS,
        message=f"unknown tool {name!r}; tools/list shows the tools you can call",
        data={"code": "unknown_tool", "tool": name},
    )


def door_error(exc: DoorError | TsunamiError, /) -> DoorError:
    return exc if isinstance(exc, DoorError) else DoorError.from_error(exc)


async def call_service(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a blocking service function in a worker thread, translating its errors for MCP."""
    try:
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))
    except TsunamiError as exc:
        raise DoorError.from_error(exc) from exc
    except Exception as exc:
        logger.exception("service call %s failed", getattr(fn, "__qualname__", repr(fn)))
        raise DoorError.internal() from exc


class ErrorShapingMiddleware(Middleware):
    """Outermost middleware: our errors become tool error results or JSON-RPC errors with a code.

    Errors raised by inner middleware (the role gate) never pass through fastmcp's own handling,
    so they are caught here as well as those coming out of tools and resources.
    """

    async def on_call_tool(
        self,
        context: MiddlewareContext[mcp_types.CallToolRequestParams],
        call_next: CallNext[mcp_types.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        try:
            return await call_next(context)
        except (DoorError, TsunamiError) as exc:
            return door_error(exc).to_tool_result()
        except (NotFoundError, DisabledError):
            # A protocol error (JSON-RPC invalid params), not a tool result: there is no such tool.
            raise unknown_tool(context.message.name) from None
        except ArgumentsError as exc:
            cause = exc.__cause__
            if not isinstance(cause, PydanticValidationError):
                raise
            known = await _argument_names(context)
            problem = invalid_arguments(
                cause.errors(include_url=False), what=f"arguments to {context.message.name}", known=known
            )
            return DoorError.from_error(problem).to_tool_result()

    async def on_read_resource(self, context: MiddlewareContext[Any], call_next: CallNext[Any, Any]) -> Any:
        try:
            return await call_next(context)
        except (DoorError, TsunamiError) as exc:
            raise door_error(exc).to_mcp_error() from None
