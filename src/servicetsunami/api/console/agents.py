"""Agents and serving endpoints: the agents and their endpoints, deploying an agent to an endpoint,
an endpoint's state (updated in place while it deploys), its URL and usage, and "Test endpoint": a
chat box that invokes it as the signed-in person, through the same path as the invocations API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from servicetsunami.api.console.render import ConsoleRoute, SessionDep, call, page
from servicetsunami.api.deps import ServicesDep, get_limiter
from servicetsunami.api.limits import RateLimiter
from servicetsunami.errors import InvalidInput
from servicetsunami.services.serving import agents, endpoints

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)


def answer_text(answer: dict[str, Any]) -> str:
    """The assistant's text in any of the invocation answer shapes."""
    choices = answer.get("choices")
    if isinstance(choices, list) and choices:
        return str((choices[0].get("message") or {}).get("content") or "")
    texts = [
        str(part.get("text", ""))
        for item in answer.get("output") or []
        if isinstance(item, dict) and item.get("type") == "message"
        for part in item.get("content") or []
        if isinstance(part, dict)
    ]
    if texts:
        return "\n".join(texts)
    return "\n".join(str(p) for p in answer.get("predictions") or [])


@router.get("/agents")
async def agents_page(request: Request, services: ServicesDep, current: SessionDep) -> Response:
    principal = current.principal
    listed = await call(lambda: agents.list_agents(services, principal))
    served = await call(lambda: endpoints.list_endpoints(services, principal))
    context = {"agents": listed.agents, "endpoints": served.endpoints}
    return page(request, services, current, "agents.html", context)


@router.get("/agents/{name}")
async def agent_page(request: Request, services: ServicesDep, current: SessionDep, name: str) -> Response:
    principal = current.principal
    agent = await call(lambda: agents.get_agent(services, principal, name))
    served = await call(lambda: endpoints.list_endpoints(services, principal))
    mine = [e for e in served.endpoints if e.agent == agent.name]
    return page(request, services, current, "agent.html", {"agent": agent, "endpoints": mine})


@router.post("/agents/{name}/deploy")
async def deploy(
    request: Request,
    services: ServicesDep,
    current: SessionDep,
    name: str,
    endpoint: Annotated[str, Form()] = "",
) -> Response:
    principal = current.principal
    if not endpoint.strip():
        raise InvalidInput("name the endpoint to deploy to")
    deployed = await call(lambda: endpoints.deploy_agent(services, principal, name, endpoint.strip(), wait_seconds=0.0))
    return RedirectResponse(f"/endpoints/{deployed.name}", status_code=303)


@router.get("/endpoints/{name}")
async def endpoint_page(request: Request, services: ServicesDep, current: SessionDep, name: str) -> Response:
    principal = current.principal
    served = await call(lambda: endpoints.get_endpoint(services, principal, name))
    return page(request, services, current, "endpoint.html", {"endpoint": served})


@router.post("/endpoints/{name}/test")
async def test_endpoint(
    request: Request,
    services: ServicesDep,
    current: SessionDep,
    limiter: Annotated[RateLimiter, Depends(get_limiter)],
    name: str,
    message: Annotated[str, Form()] = "",
) -> Response:
    """One message to the endpoint; the exchange is appended to the page's chat log."""
    principal = current.principal
    if not message.strip():
        raise InvalidInput("write a message to send")
    body = {"messages": [{"role": "user", "content": message}]}
    answer = await call(lambda: endpoints.invoke_endpoint(services, principal, name, body, limiter=limiter))
    return page(request, services, current, "_exchange.html", {"message": message, "reply": answer_text(answer)})
