"""Request bodies read with a bound, for the doors that must see a whole body before answering (the
REST body-size limit, the MCP HTTP door): a body past ``limit`` is never held in memory whole."""

from __future__ import annotations

from starlette.types import Message, Receive


async def read_at_most(receive: Receive, limit: int, /) -> bytes | None:
    """The request body, or ``None`` as soon as it is past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive, /) -> Receive:
    """A ``receive`` that hands the app ``body`` (already read) once, then what the client sends."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # http.disconnect, when the client goes

    return replayed
