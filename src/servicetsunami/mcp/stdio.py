"""``tsunami mcp``: MCP over stdio for a local client (Claude Desktop, Claude Code, ...).

The caller is fixed at launch by ``TSUNAMI_API_KEY``: there is no default identity, so a missing
or refused key stops the server with exit status 2 and a message on stderr saying what to do.
stdout carries the protocol and nothing else: logging goes to stderr.

A line that is not one JSON-RPC message (not JSON, a batch, no ``"jsonrpc": "2.0"``) is answered
with the JSON-RPC error it calls for (:mod:`servicetsunami.mcp.protocol`) instead of being dropped
by the SDK's reader without a word: :func:`serve_stdio` sits between that reader and the server.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from fastmcp import FastMCP

from servicetsunami import logs
from servicetsunami.errors import AuthError
from servicetsunami.logs import configure_logging
from servicetsunami.settings import Settings

logger = logging.getLogger(__name__)

EXIT_NO_KEY = 2

NO_KEY_MESSAGE = """\
tsunami mcp: no API key. Set TSUNAMI_API_KEY to a key of your tenant, for example:

    tsunami keys create --name claude-desktop --role engineer
    TSUNAMI_API_KEY=tsk_... tsunami mcp

(in Claude Desktop, put TSUNAMI_API_KEY under "env" in the server's entry)."""

BAD_KEY_MESSAGE = """\
tsunami mcp: the API key in TSUNAMI_API_KEY was not accepted ({reason}).
Create a new one with `tsunami keys create` and check that TSUNAMI_HOME points at the same data
folder ({home})."""


def run_stdio(settings: Settings) -> None:
    """Serve MCP on stdin/stdout as the principal of ``settings.api_key``; returns when stdin closes."""
    configure_logging(settings.log_level, stream=sys.stderr, json_lines=settings.log_format == "json")
    if not settings.api_key.strip():
        print(NO_KEY_MESSAGE, file=sys.stderr)
        raise SystemExit(EXIT_NO_KEY)

    # Imported here so that a missing key is reported before the engine and fastmcp load.
    from servicetsunami.mcp.server import build_mcp_server, use_service_logging
    from servicetsunami.security.ratelimits import open_rate_limiter
    from servicetsunami.services.container import Services
    from servicetsunami.services.runs import service as runs

    use_service_logging()
    services = Services.open(settings)
    try:
        try:
            principal = services.authenticate(settings.api_key.strip())
        except AuthError as exc:
            print(BAD_KEY_MESSAGE.format(reason=exc.message, home=settings.resolved_home), file=sys.stderr)
            raise SystemExit(EXIT_NO_KEY) from None
        logs.tenant.set(principal.tenant_slug)
        logger.info(
            "serving MCP over stdio for tenant %s as %s (%s)",
            principal.tenant_slug,
            principal.subject,
            principal.role.value,
        )
        # Runs queued here or by others (syncs, the mirror's replays) execute while the server runs.
        runs.ensure_worker(services)
        # Tools with limits of their own count against the file the other processes share.
        limited = settings.rate_limits.tools or settings.rate_limits.default
        limiter = open_rate_limiter(settings) if limited else None
        try:
            anyio.run(serve_stdio, build_mcp_server(services, principal=principal, limiter=limiter))
        finally:
            if limiter is not None:
                limiter.close()
    finally:
        services.close()


async def serve_stdio(server: FastMCP) -> None:
    """Serve ``server`` on stdin/stdout until stdin closes (fastmcp's stdio runner, plus answers to
    unreadable lines)."""
    import mcp_types
    from fastmcp.server.context import reset_transport, set_transport
    from mcp.server.stdio import stdio_server
    from mcp.shared.message import SessionMessage

    from servicetsunami.mcp.protocol import validation_error_answer

    token = set_transport("stdio")
    try:
        async with server._lifespan_manager(), stdio_server() as (sdk_read, write):
            relay_send, relay_read = anyio.create_memory_object_stream[SessionMessage | Exception](0)

            async def relay() -> None:
                async with relay_send:
                    async for item in sdk_read:
                        if not isinstance(item, Exception):
                            await relay_send.send(item)
                            continue
                        answer = validation_error_answer(item)
                        if answer is None:
                            await relay_send.send(item)
                            continue
                        logger.info("answered an unreadable message: %s", answer["error"]["message"])
                        message = mcp_types.jsonrpc_message_adapter.validate_python(answer)
                        await write.send(SessionMessage(message))

            async with anyio.create_task_group() as tg:
                tg.start_soon(relay)
                await server._mcp_server.run(relay_read, write, server._mcp_server.create_initialization_options())
                tg.cancel_scope.cancel()
    finally:
        reset_transport(token)
