"""Server-to-client requests (sampling) over stateless streamable HTTP, across worker processes.

The HTTP door is stateless: each POST gets a fresh MCP connection, so on protocols 2025-06-18 and
2025-11-25 (the ``initialize`` handshake) the server would forget what the client declared at
``initialize``, and the client's answer to a server request, sent as a new POST, could reach any
worker process. This module closes both gaps for clients that declare ``sampling``:

- **A session that remembers capabilities.** The answer to such a client's ``initialize`` carries
  an ``Mcp-Session-Id``: the name of a small record (protocol version, client info and
  capabilities, the principal it belongs to) in :class:`Mailbox`, a folder of the data home that
  every worker of ``tsunami serve --workers N`` shares. Later POSTs naming the session (by the
  same principal) are served by :func:`serve_with_back_channel`: a connection built from that
  record, whose request-scoped channel may send requests (the sampling request goes out on the
  POST's own event stream, with an id unique across requests).
- **Answers delivered to whichever process waits.** A POST that carries a JSON-RPC *response* for
  the session is written to the mailbox (answered 202); the process whose tool call waits for
  that id picks it up (polling every :data:`POLL_SECONDS`) and feeds it to its connection as if
  it had arrived there.

The 2026-07-28 protocol needs none of this: its tools ask through input-required rounds
(:mod:`servicetsunami.mcp.tools.ai`). Clients that do not declare sampling stay on the plain
stateless path, without a session.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread
import mcp_types
from mcp.server.connection import Connection
from mcp.server.runner import serve_connection
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher
from mcp.shared.message import SessionMessage
from mcp.shared.transport_context import TransportContext
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION
from starlette.types import Receive, Scope, Send

logger = logging.getLogger(__name__)

SESSION_HEADER = "mcp-session-id"
POLL_SECONDS = 0.05
SESSION_IDLE_SECONDS = 24 * 3600  # a session not used for this long is forgotten
REPLY_KEEP_SECONDS = 600  # an answer nobody collected is dropped after this
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True, slots=True)
class ClientSession:
    """What a client declared at ``initialize``, and whose session it is."""

    tenant_id: str
    subject: str
    protocol_version: str
    client_info: dict[str, Any] | None
    capabilities: dict[str, Any]


def wants_session(message: Mapping[str, Any], /) -> bool:
    """True for an ``initialize`` of the handshake era from a client that declares sampling."""
    if message.get("method") != "initialize":
        return False
    params = message.get("params")
    if not isinstance(params, dict):
        return False
    capabilities = params.get("capabilities")
    return isinstance(capabilities, dict) and isinstance(capabilities.get("sampling"), dict)


def session_from_initialize(message: Mapping[str, Any], *, tenant_id: str, subject: str) -> ClientSession:
    params = message["params"]
    requested = params.get("protocolVersion")
    version = requested if requested in HANDSHAKE_PROTOCOL_VERSIONS else LATEST_HANDSHAKE_VERSION
    info = params.get("clientInfo")
    return ClientSession(
        tenant_id=tenant_id,
        subject=subject,
        protocol_version=version,
        client_info=info if isinstance(info, dict) else None,
        capabilities=dict(params["capabilities"]),
    )


def is_response(message: Mapping[str, Any], /) -> bool:
    return "method" not in message and ("result" in message or "error" in message)


class Mailbox:
    """Sessions and undelivered answers as small files under ``root`` (one folder per kind),
    written whole by rename, so every process on the machine sees the same ones."""

    def __init__(self, root: Path) -> None:
        self.sessions = root / "sessions"
        self.replies = root / "replies"
        for folder in (self.sessions, self.replies):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    def open_session(self, session: ClientSession, /) -> str:
        self._sweep()
        session_id = secrets.token_urlsafe(32)
        _write_whole(self.sessions / f"{session_id}.json", asdict(session))
        return session_id

    def session(self, session_id: str, *, tenant_id: str, subject: str) -> ClientSession | None:
        """The session of that id if it belongs to that principal (and is not stale), else None."""
        if not _SESSION_ID.match(session_id):
            return None
        path = self.sessions / f"{session_id}.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        session = ClientSession(**data)
        if (session.tenant_id, session.subject) != (tenant_id, subject):
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # in use: keep it
        return session

    def post_reply(self, session_id: str, message: Mapping[str, Any], /) -> bool:
        """Leave an answer for whoever waits on it; False when its id cannot name a file."""
        request_id = str(message.get("id"))
        if not _SESSION_ID.match(session_id) or not _REQUEST_ID.match(request_id):
            return False
        _write_whole(self.replies / f"{session_id}.{request_id}.json", dict(message))
        return True

    def take_reply(self, session_id: str, request_id: str) -> dict[str, Any] | None:
        path = self.replies / f"{session_id}.{request_id}.json"
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        with contextlib.suppress(OSError):
            path.unlink()
        return data

    def _sweep(self) -> None:
        now = time.time()
        for folder, keep in ((self.sessions, SESSION_IDLE_SECONDS), (self.replies, REPLY_KEEP_SECONDS)):
            for path in folder.glob("*.json"):
                with contextlib.suppress(OSError):
                    if now - path.stat().st_mtime > keep:
                        path.unlink()


def _write_whole(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    temporary.write_text(json.dumps(data))
    temporary.replace(path)


class _Inbox:
    """The read stream a connection's dispatcher reads: the POST's own messages (with the context
    they were sent in, which carries the caller's credentials) and answers from the mailbox."""

    def __init__(self) -> None:
        self._send, self._receive = anyio.create_memory_object_stream[
            tuple[contextvars.Context | None, SessionMessage | Exception]
        ](16)
        self.last_context: contextvars.Context | None = None

    async def put(self, item: SessionMessage | Exception, context: contextvars.Context | None) -> None:
        await self._send.send((context, item))

    def close(self) -> None:
        self._send.close()

    async def receive(self) -> SessionMessage | Exception:
        context, item = await self._receive.receive()
        self.last_context = context
        return item

    def __aiter__(self) -> _Inbox:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        self._receive.close()

    async def __aenter__(self) -> _Inbox:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class _Outbox:
    """The write stream: passes everything to the POST's stream and notes the ids of the requests
    the server sends, so that their answers are looked for in the mailbox."""

    def __init__(self, inner: Any, waiting: set[str]) -> None:
        self._inner = inner
        self._waiting = waiting

    async def send(self, item: SessionMessage) -> None:
        message = item.message
        if isinstance(message, mcp_types.JSONRPCRequest):
            self._waiting.add(str(message.id))
        await self._inner.send(item)

    def close(self) -> None:
        self._inner.close()

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> _Outbox:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def serve_with_back_channel(
    manager: StreamableHTTPSessionManager,
    mailbox: Mailbox,
    session_id: str,
    session: ClientSession,
    scope: Scope,
    receive: Receive,
    send: Send,
) -> None:
    """Serve one POST of ``session`` like the SDK's stateless path does, but on a connection that
    knows the client's capabilities and may send it requests (answered through the mailbox)."""
    # The manager's task group and lifespan state are where the SDK runs its own per-request
    # servers; the connection below must live in the same place to outlive this handler's sends.
    task_group: anyio.abc.TaskGroup | None = manager._task_group
    if task_group is None:
        raise RuntimeError("the MCP session manager is not running")
    transport = StreamableHTTPServerTransport(
        mcp_session_id=None,  # the SDK checks no session: it is ours, checked before we get here
        is_json_response_enabled=False,
        event_store=None,
        security_settings=manager.security_settings,
    )
    connection = Connection.from_envelope(session.protocol_version, session.client_info, session.capabilities)

    async def run_server(*, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with transport.connect() as (read_stream, write_stream):
            inbox = _Inbox()
            waiting: set[str] = set()
            dispatcher: JSONRPCDispatcher[TransportContext] = JSONRPCDispatcher(
                inbox,
                _Outbox(write_stream, waiting),
                inline_methods=frozenset({"initialize"}),
                transport_builder=lambda _metadata: TransportContext(kind="streamable-http", can_send_request=True),
            )
            # Ids of server requests must not repeat across the session's POSTs (each has its own
            # dispatcher, counting from here): the answers are filed by id.
            dispatcher._next_id = secrets.randbits(48)
            task_status.started()

            async def forward() -> None:
                try:
                    async for item in read_stream:
                        await inbox.put(item, getattr(read_stream, "last_context", None))
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    pass  # the transport ended the exchange
                finally:
                    inbox.close()

            async def collect() -> None:
                while True:  # looks at the disk only while a request of this POST waits
                    for request_id in list(waiting):
                        reply = await anyio.to_thread.run_sync(mailbox.take_reply, session_id, request_id)
                        if reply is not None:
                            waiting.discard(request_id)
                            message = mcp_types.jsonrpc_message_adapter.validate_python(reply, by_name=False)
                            await inbox.put(SessionMessage(message), None)
                    await anyio.sleep(POLL_SECONDS)

            async with anyio.create_task_group() as inner:
                inner.start_soon(forward)
                inner.start_soon(collect)
                try:
                    await serve_connection(
                        manager.app, dispatcher, connection=connection, lifespan_state=manager._lifespan_state
                    )
                except Exception:  # never into the manager's task group: that would stop the door
                    logger.exception("an MCP connection with a back channel failed")
                inner.cancel_scope.cancel()

    try:
        await task_group.start(run_server)
        await transport.handle_request(scope, receive, send)
    finally:
        with anyio.CancelScope(shield=True):
            await transport.terminate()
