"""Serving endpoints: ``/serving-endpoints`` (deploy, list), ``/serving-endpoints/workspace-models``
(a Databricks Model Serving endpoint), ``/serving-endpoints/{name}`` (get with
usage, delete) and ``POST /serving-endpoints/{name}/invocations`` in Databricks' wire shapes, also
served at the root path Databricks uses (``/serving-endpoints/{name}/invocations``), so a client of
Model Serving only changes its host. ``"stream": true`` answers with server-sent events.

Invocations are counted against the endpoint's own rate limit, per caller."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from servicetsunami.api.deps import LimiterDep, PrincipalDep, ServicesDep
from servicetsunami.api.schemas.common import COMMON_ERRORS, problem_responses
from servicetsunami.api.schemas.serving import EndpointCreate, WorkspaceModelDeploy
from servicetsunami.errors import InvalidInput
from servicetsunami.services.serving import endpoints, workspace
from servicetsunami.services.serving.endpoints import EndpointList, EndpointPublic
from servicetsunami.services.serving.streaming import sse_answer

router = APIRouter(prefix="/serving-endpoints", tags=["serving endpoints"])
invocations_router = APIRouter(tags=["serving endpoints"])
INVOKE_ERRORS = {**COMMON_ERRORS, **problem_responses(429, 503)}
INVOCATION_BODY = {
    "description": "One of messages, input, dataframe_records, dataframe_split or instances; stream: true for SSE",
    "content": {"application/json": {"schema": {"type": "object", "additionalProperties": True}}},
    "required": True,
}


@router.post(
    "", operation_id="create_serving_endpoint", status_code=202, response_model=EndpointPublic, responses=COMMON_ERRORS
)
async def create_endpoint(body: EndpointCreate, services: ServicesDep, principal: PrincipalDep) -> EndpointPublic:
    """Deploy an agent as a serving endpoint (a run; answered after a bounded wait, state NOT_READY
    until it is READY or FAILED with why)."""
    return await run_in_threadpool(
        lambda: endpoints.deploy_agent(
            services,
            principal,
            body.agent,
            body.name,
            rate_limit=body.rate_limit,
            workload_size=body.workload_size,
            wait_seconds=body.wait_seconds,
        )
    )


@router.post(
    "/workspace-models",
    operation_id="create_workspace_model_endpoint",
    status_code=202,
    response_model=EndpointPublic,
    responses={**COMMON_ERRORS, **problem_responses(501)},
)
async def create_workspace_model_endpoint(
    body: WorkspaceModelDeploy, services: ServicesDep, principal: PrincipalDep
) -> EndpointPublic:
    """Databricks engine: serve a Unity Catalog model of your catalog, or a Foundation Model of
    system.ai, on a Model Serving endpoint (a run; NOT_READY until READY or FAILED with why).
    Invocations of the endpoint are forwarded to it; other engines answer not_supported."""
    return await run_in_threadpool(
        lambda: workspace.deploy_workspace_model(
            services,
            principal,
            body.name,
            entity_name=body.entity_name,
            entity_version=body.entity_version,
            workload_size=body.workload_size,
            rate_limit=body.rate_limit,
            wait_seconds=body.wait_seconds,
        )
    )


@router.get("", operation_id="list_serving_endpoints", response_model=EndpointList, responses=COMMON_ERRORS)
async def list_endpoints(services: ServicesDep, principal: PrincipalDep) -> EndpointList:
    """The tenant's serving endpoints, with their state and usage."""
    return await run_in_threadpool(endpoints.list_endpoints, services, principal)


@router.get("/{name}", operation_id="get_serving_endpoint", response_model=EndpointPublic, responses=COMMON_ERRORS)
async def get_endpoint(name: str, services: ServicesDep, principal: PrincipalDep) -> EndpointPublic:
    """One endpoint: state, what it serves, usage (requests, errors, tokens, latency percentiles)."""
    return await run_in_threadpool(endpoints.get_endpoint, services, principal, name)


@router.delete(
    "/{name}", operation_id="delete_serving_endpoint", response_model=EndpointPublic, responses=COMMON_ERRORS
)
async def delete_endpoint(name: str, services: ServicesDep, principal: PrincipalDep) -> EndpointPublic:
    """Delete an endpoint; its URL answers not_found from then on."""
    return await run_in_threadpool(endpoints.delete_endpoint, services, principal, name)


async def invoke(
    name: str, request: Request, services: ServicesDep, principal: PrincipalDep, limiter: LimiterDep
) -> Any:
    """Invoke an endpoint: chat completions (``messages``), ResponsesAgent (``input``) or tabular
    (``dataframe_records``, ``dataframe_split``, ``instances``: ``predictions``)."""
    try:
        body = await request.json()
    except ValueError:
        raise InvalidInput("the request body must be JSON") from None
    prepared = await run_in_threadpool(
        lambda: endpoints.prepare_invocation(services, principal, name, body, limiter=limiter)
    )
    if prepared.invocation.stream:
        return StreamingResponse(
            sse_answer(services, principal, prepared),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache"},
        )
    answer, _ = await run_in_threadpool(endpoints.execute_invocation, services, principal, prepared)
    return JSONResponse(answer)


for _router in (router, invocations_router):
    _router.add_api_route(
        "/{name}/invocations" if _router is router else "/serving-endpoints/{name}/invocations",
        invoke,
        methods=["POST"],
        operation_id="invoke_serving_endpoint" if _router is router else "invoke_serving_endpoint_databricks_path",
        responses={200: {"description": "The answer (JSON), or server-sent events"}, **INVOKE_ERRORS},
        openapi_extra={"requestBody": INVOCATION_BODY},
        include_in_schema=_router is router,
    )
