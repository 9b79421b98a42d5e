"""JSON-RPC envelope checks shared by both MCP transports, answered in JSON-RPC's own terms.

The MCP SDK validates each incoming message against the union of every JSON-RPC shape; what does
not fit is either answered with ``-32602`` and a pydantic dump (HTTP) or dropped without an answer
(stdio). Here the same message gets the answer JSON-RPC 2.0 prescribes:

- not JSON at all: ``-32700`` parse error, ``id: null``;
- a batch (a JSON array): ``-32600`` invalid request, ``id: null`` (batching left MCP in 2025-06-18);
- anything but an object with ``"jsonrpc": "2.0"`` and a ``method`` or a ``result``/``error``:
  ``-32600`` with the message's own ``id`` when it has a usable one.

An unsupported ``MCP-Protocol-Version`` header is refused with the list of versions this server
speaks (:data:`SUPPORTED_PROTOCOL_VERSIONS`).
"""

from __future__ import annotations

import json
from typing import Any

import mcp_types
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

SUPPORTED_PROTOCOL_VERSIONS: tuple[str, ...] = (*HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS)

PARSE_ERROR_MESSAGE = "parse error: the message is not valid JSON; send one JSON-RPC 2.0 object per message"
BATCH_MESSAGE = "invalid request: JSON-RPC batches (arrays) are not accepted; send one JSON-RPC 2.0 object per message"
NOT_AN_OBJECT_MESSAGE = "invalid request: a message must be a JSON-RPC 2.0 object"
NO_VERSION_MESSAGE = 'invalid request: a message must carry "jsonrpc": "2.0"'
NO_METHOD_MESSAGE = 'invalid request: a request or notification needs a string "method"'
BAD_ID_MESSAGE = 'invalid request: "id" must be a string or an integer'


def error(code: int, message: str, request_id: Any = None, data: Any = None) -> dict[str, Any]:
    """A JSON-RPC error response, ready to be serialised."""
    body: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        body["data"] = data
    return {"jsonrpc": "2.0", "id": _usable_id(request_id), "error": body}


def parse_error() -> dict[str, Any]:
    return error(mcp_types.PARSE_ERROR, PARSE_ERROR_MESSAGE)


def envelope_error(payload: Any, /) -> dict[str, Any] | None:
    """The JSON-RPC error answering ``payload`` (decoded JSON), or None when its envelope is sound
    (its method and params are then the SDK's to check)."""
    if isinstance(payload, list):
        return error(mcp_types.INVALID_REQUEST, BATCH_MESSAGE)
    if not isinstance(payload, dict):
        return error(mcp_types.INVALID_REQUEST, NOT_AN_OBJECT_MESSAGE)
    request_id = payload.get("id")
    if payload.get("jsonrpc") != "2.0":
        return error(mcp_types.INVALID_REQUEST, NO_VERSION_MESSAGE, request_id)
    if "id" in payload and _usable_id(request_id) is None and request_id is not None:
        return error(mcp_types.INVALID_REQUEST, BAD_ID_MESSAGE)
    is_response = "result" in payload or "error" in payload
    if not is_response and not isinstance(payload.get("method"), str):
        return error(mcp_types.INVALID_REQUEST, NO_METHOD_MESSAGE, request_id)
    return None


def body_error(body: bytes, /) -> dict[str, Any] | None:
    """:func:`envelope_error` for a raw message body, with the parse error for one that is not JSON."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return parse_error()
    return envelope_error(payload)


def validation_error_answer(exc: Exception, /) -> dict[str, Any] | None:
    """The answer to a message the SDK could not read (the exception its reader passed on), or None
    when the exception says nothing about a message (nothing to answer)."""
    if not isinstance(exc, ValidationError):
        return None
    errors = exc.errors(include_url=False)
    if any(e.get("type") == "json_invalid" for e in errors):
        return parse_error()
    payload = _message_of(errors)
    answer = envelope_error(payload)
    if answer is not None:
        return answer
    # A sound envelope the SDK still refused (e.g. params that are not an object): invalid request.
    request_id = payload.get("id") if isinstance(payload, dict) else None
    return error(mcp_types.INVALID_REQUEST, "invalid request: the message does not fit JSON-RPC 2.0", request_id)


def _message_of(errors: list[Any]) -> Any:
    """The whole message out of the SDK's union validation errors: the input of an error about a
    union branch itself (``loc`` = the branch), or of a missing top-level field."""
    for e in errors:
        loc = e.get("loc", ())
        if len(loc) == 1 or (len(loc) == 2 and e.get("type") == "missing"):
            return e.get("input")
    return {}


def unsupported_version_error(requested: str, /) -> dict[str, Any]:
    supported = ", ".join(SUPPORTED_PROTOCOL_VERSIONS)
    return error(
        mcp_types.INVALID_REQUEST,
        f"unsupported MCP-Protocol-Version {requested!r}: this server speaks {supported}",
        data={"supported": list(SUPPORTED_PROTOCOL_VERSIONS), "requested": requested},
    )


def _usable_id(value: Any) -> str | int | None:
    if isinstance(value, bool):
        return None
    return value if isinstance(value, (str, int)) else None
