"""Chat with an agent of the caller's tenant: ``POST /chat/message`` (one answer), the WebSocket
``/chat/ws`` (tool calls, their results and the answer's tokens as they happen) and
``GET /chat/conversations/{id}``.

The WebSocket authenticates like every other door: an ``Authorization: Bearer`` header (a key or an
access token), or, for browsers that cannot set one, a first message ``{"token": "..."}``. Then each
message ``{"message", "conversation_id"?, "agent"?}`` is answered with events ``{"type": "text",
"delta"}``, ``{"type": "tool_call", ...}``, ``{"type": "tool_result", ...}`` and a last
``{"type": "done", ...ChatAnswer}`` or ``{"type": "error", "code", "message"}``. A bad credential
closes the socket with code 1008."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from servicetsunami.api.deps import LimiterDep, PrincipalDep, ServicesDep
from servicetsunami.api.schemas.common import COMMON_ERRORS
from servicetsunami.api.schemas.serving import ChatMessageIn
from servicetsunami.errors import AuthError, TsunamiError, invalid_arguments
from servicetsunami.security.ratelimits import RateLimiter
from servicetsunami.services.container import Services
from servicetsunami.services.serving import chat
from servicetsunami.services.serving.chat import ChatAnswer, ConversationPublic
from servicetsunami.services.serving.streaming import stream_events
from servicetsunami.tenancy import Principal

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/chat", tags=["chat"])
POLICY_VIOLATION = 1008


@router.post("/message", operation_id="chat_message", response_model=ChatAnswer, responses=COMMON_ERRORS)
async def chat_message(
    body: ChatMessageIn, services: ServicesDep, principal: PrincipalDep, limiter: LimiterDep
) -> ChatAnswer:
    """Say something to an agent (default: the tenant's SQL agent); the conversation is kept."""
    return await run_in_threadpool(
        lambda: chat.chat_message(
            services,
            principal,
            body.message,
            conversation_id=body.conversation_id,
            agent=body.agent,
            limiter=limiter,
        )
    )


@router.get(
    "/conversations/{conversation_id}",
    operation_id="get_conversation",
    response_model=ConversationPublic,
    responses=COMMON_ERRORS,
)
async def get_conversation(conversation_id: str, services: ServicesDep, principal: PrincipalDep) -> ConversationPublic:
    """One of your conversations, with its turns (tool calls and their results included)."""
    return await run_in_threadpool(chat.get_conversation, services, principal, conversation_id)


@router.websocket("/ws")
async def chat_socket(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    limiter: RateLimiter = websocket.app.state.limiter
    await websocket.accept()
    try:
        header = websocket.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if not token:
            first = await websocket.receive_json()
            token = str(first.get("token") or "") if isinstance(first, dict) else ""
        try:
            principal = await run_in_threadpool(services.authenticate, token)
        except AuthError as exc:
            await websocket.send_json({"type": "error", "code": exc.code, "message": exc.message})
            await websocket.close(code=POLICY_VIOLATION)
            return
        await websocket.send_json({"type": "ready", "tenant": principal.tenant_slug})
        while True:
            await _answer(websocket, services, principal, limiter, await websocket.receive_json())
    except WebSocketDisconnect:
        return


async def _answer(
    websocket: WebSocket, services: Services, principal: Principal, limiter: RateLimiter, raw: Any
) -> None:
    try:
        incoming = ChatMessageIn.model_validate(raw)
    except ValidationError as exc:
        invalid = invalid_arguments(list(exc.errors()), what="message")
        await websocket.send_json({"type": "error", "code": invalid.code, "message": invalid.message})
        return

    def work(emit: Any) -> ChatAnswer:
        return chat.chat_message(
            services,
            principal,
            incoming.message,
            conversation_id=incoming.conversation_id,
            agent=incoming.agent,
            limiter=limiter,
            emit=emit,
        )

    async for kind, value in stream_events(work):
        if kind == "event":
            await websocket.send_json(value)
        elif kind == "done":
            await websocket.send_json({"type": "done", **value.model_dump(mode="json")})
        else:
            error: TsunamiError = value
            await websocket.send_json({"type": "error", "code": error.code, "message": error.message})
