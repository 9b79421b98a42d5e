"""Model Serving on the fake workspace: create, get, list, delete endpoints
(``/api/2.0/serving-endpoints``, shapes of the SDK's ``ServingEndpointDetailed``) and query them
(``POST /serving-endpoints/{name}/invocations``).

A created endpoint answers ``NOT_READY`` (config update ``IN_PROGRESS``) to its first get, then
``READY``, as a real one does while its served entity starts. Queries are answered by a scripted
model (:attr:`ServingState.script`, the fake LLM's :class:`~tests.fakes.llm.Scripted` replies, one
per model call; ``"ok"`` once it is used up), through the service's own wire shapes
(``servicetsunami.services.serving.wire``): ``messages``, ``input`` and the tabular shapes. A chat
request that carries ``tools`` (an agent using the endpoint as its Foundation Model) is answered in
the chat-completions shape with the scripted tool calls, streamed as ``chat.completion.chunk``
events when it asks (``stream: true``).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from servicetsunami.errors import InvalidInput
from servicetsunami.services.serving import wire
from tests.fakes.llm import Scripted, _openai_reply, _openai_stream


@dataclass
class ServingState:
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    polls: dict[str, int] = field(default_factory=dict)  # gets left before an endpoint is READY
    script: list[Scripted] = field(default_factory=list)
    queries: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_reply(self) -> Scripted:
        with self.lock:
            return self.script.pop(0) if self.script else Scripted(text="ok")


def serving_routes(handler: Callable[[Any], Any], error: Callable[[int, str, str], JSONResponse]) -> list[Route]:
    def create(state: Any, request: Request, body: bytes) -> Response:
        spec = json.loads(body or b"{}")
        name = spec.get("name")
        serving: ServingState = state.serving
        if not name:
            return error(400, "INVALID_PARAMETER_VALUE", "name is required")
        with serving.lock:
            if name in serving.endpoints:
                return error(409, "RESOURCE_ALREADY_EXISTS", f"Endpoint with name '{name}' already exists.")
            now = int(time.time() * 1000)
            entities = [
                {
                    "name": e.get("name") or f"{e.get('entity_name', 'model')}-{e.get('entity_version', '1')}",
                    "entity_name": e.get("entity_name"),
                    "entity_version": e.get("entity_version"),
                    "workload_size": e.get("workload_size", "Small"),
                    "scale_to_zero_enabled": bool(e.get("scale_to_zero_enabled", False)),
                    "state": {"deployment": "DEPLOYMENT_READY"},
                    "creator": "fake@example.com",
                    "creation_timestamp": now,
                }
                for e in (spec.get("config") or {}).get("served_entities") or []
            ]
            serving.endpoints[name] = {
                "name": name,
                "id": uuid.uuid4().hex,
                "creator": "fake@example.com",
                "creation_timestamp": now,
                "last_updated_timestamp": now,
                "config": {"served_entities": entities, "config_version": 1},
                "task": spec.get("task", "llm/v1/chat"),
                "permission_level": "CAN_MANAGE",
            }
            serving.polls[name] = 1
        return JSONResponse(_detailed(serving, name, poll=False))

    def get(state: Any, request: Request, body: bytes) -> Response:
        name = request.path_params["name"]
        if name not in state.serving.endpoints:
            return _missing(error, name)
        return JSONResponse(_detailed(state.serving, name, poll=True))

    def listed(state: Any, request: Request, body: bytes) -> Response:
        serving: ServingState = state.serving
        return JSONResponse({"endpoints": [_detailed(serving, n, poll=False) for n in sorted(serving.endpoints)]})

    def delete(state: Any, request: Request, body: bytes) -> Response:
        name = request.path_params["name"]
        with state.serving.lock:
            if state.serving.endpoints.pop(name, None) is None:
                return _missing(error, name)
        return JSONResponse({})

    def query(state: Any, request: Request, body: bytes) -> Response:
        name = request.path_params["name"]
        serving: ServingState = state.serving
        if name not in serving.endpoints:
            return _missing(error, name)
        if _detailed(serving, name, poll=False)["state"]["ready"] != "READY":
            return error(400, "INVALID_PARAMETER_VALUE", f"Endpoint {name} is not ready.")
        request_body = json.loads(body or b"{}")
        serving.queries.append(request_body)
        if "tools" in request_body:
            if request_body.get("stream"):
                chunks = _openai_stream(serving.next_reply(), name, len(serving.queries))
                return StreamingResponse(iter(chunks), media_type="text/event-stream")
            return JSONResponse(_openai_reply(serving.next_reply(), name, len(serving.queries)))
        try:
            invocation = wire.parse_request(request_body)
        except InvalidInput as exc:
            return error(400, "BAD_REQUEST", exc.message)
        replies = [serving.next_reply() for _ in invocation.conversations]
        tokens_in, tokens_out = sum(r.input_tokens for r in replies), sum(r.output_tokens for r in replies)
        if invocation.shape == "chat":
            return JSONResponse(
                wire.chat_completion(replies[0].text, model=name, input_tokens=tokens_in, output_tokens=tokens_out)
            )
        if invocation.shape == "responses":
            added = [{"role": "assistant", "content": replies[0].text}]
            return JSONResponse(wire.response(added, model=name, input_tokens=tokens_in, output_tokens=tokens_out))
        return JSONResponse({"predictions": [r.text for r in replies]})

    return [
        Route("/api/2.0/serving-endpoints", handler(create), methods=["POST"]),
        Route("/api/2.0/serving-endpoints", handler(listed), methods=["GET"]),
        Route("/api/2.0/serving-endpoints/{name}", handler(get), methods=["GET"]),
        Route("/api/2.0/serving-endpoints/{name}", handler(delete), methods=["DELETE"]),
        Route("/serving-endpoints/{name}/invocations", handler(query), methods=["POST"]),
    ]


def _missing(error: Callable[[int, str, str], JSONResponse], name: str) -> JSONResponse:
    return error(404, "RESOURCE_DOES_NOT_EXIST", f"Endpoint with name '{name}' does not exist.")


def _detailed(serving: ServingState, name: str, *, poll: bool) -> dict[str, Any]:
    with serving.lock:
        endpoint = dict(serving.endpoints[name])
        left = serving.polls.get(name, 0)
        if poll and left > 0:
            serving.polls[name] = left - 1  # this get still sees it starting; the next one READY
    ready = left <= 0
    endpoint["state"] = {
        "ready": "READY" if ready else "NOT_READY",
        "config_update": "NOT_UPDATING" if ready else "IN_PROGRESS",
    }
    return endpoint
