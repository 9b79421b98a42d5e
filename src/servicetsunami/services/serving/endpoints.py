"""Serving endpoints: deploy an agent (a run: ``NOT_READY`` then ``READY``, or ``FAILED`` with why),
invoke it in the Databricks wire shapes (:mod:`.wire`), list, get (with usage), delete.

An endpoint serves a copy of its agent's definition taken when it was deployed (deploying again
takes a new one), like Model Serving serves one model version. Each invocation is recorded as a run
of kind ``agent_invocation`` (its steps, tokens and every tool call in the run's result) and counted
in the endpoint's usage (requests, errors, tokens, the latencies of the last
:data:`LATENCY_SAMPLES` requests for percentiles), in the same transaction.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from servicetsunami.errors import Conflict, InvalidInput, ModelUnavailable, NotFound, NotSupported, TsunamiError
from servicetsunami.llm.chat import Message
from servicetsunami.security.ratelimits import RateLimiter, parse_rate
from servicetsunami.services.runs import service as runs
from servicetsunami.services.runs.kinds import RunKind, register
from servicetsunami.services.serving import wire, workspace
from servicetsunami.services.serving.agents import AgentDefinition, check_name
from servicetsunami.services.serving.databricks import DatabricksEndpointChat
from servicetsunami.services.serving.loop import AgentResult, Emit, resolve_model, run_agent
from servicetsunami.store.models import ServingEndpoint
from servicetsunami.store.repositories import audit as audit_repo
from servicetsunami.store.repositories import runs as runs_repo
from servicetsunami.store.repositories import serving as serving_repo
from servicetsunami.tenancy import Principal, Scope

if TYPE_CHECKING:
    from servicetsunami.services.container import Services
    from servicetsunami.services.runs.context import RunContext

logger = logging.getLogger(__name__)

DEPLOY_KIND = "endpoint_deploy"
INVOCATION_KIND = "agent_invocation"
LATENCY_SAMPLES = 500
WORKLOAD_SIZES = ("Small", "Medium", "Large")


class LatencyPercentiles(BaseModel):
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None


class EndpointUsage(BaseModel):
    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: LatencyPercentiles = Field(
        default_factory=LatencyPercentiles, description=f"Over the last {LATENCY_SAMPLES} requests"
    )


class EndpointPublic(BaseModel):
    endpoint_id: str
    name: str
    kind: str = Field(
        description="agent (deployed with deploy_agent or deploy_model), or model (a Databricks Model Serving "
        "endpoint made with deploy_workspace_model; invocations are forwarded to it)"
    )
    agent: str | None = Field(None, description="The agent it was deployed from")
    state: str = Field(description="NOT_READY (deploying), READY, or FAILED (see error)")
    error: str | None = None
    run_id: str | None = Field(None, description="The deployment run")
    rate_limit: str
    url: str = Field(description="POST here to invoke it (Databricks' invocations path)")
    config: dict[str, Any] = Field(description="The agent definition it serves, and the workload size")
    usage: EndpointUsage
    created_by: str
    created_at: datetime
    updated_at: datetime


class EndpointList(BaseModel):
    endpoints: list[EndpointPublic]


def endpoint_url(svc: Services, name: str, /) -> str:
    return f"{svc.settings.resolved_public_url}/serving-endpoints/{name}/invocations"


def public(svc: Services, endpoint: ServingEndpoint, /) -> EndpointPublic:
    usage = dict(endpoint.meta.get("usage") or {})
    samples = sorted(float(x) for x in endpoint.meta.get("latencies_ms") or [])
    return EndpointPublic(
        endpoint_id=endpoint.id,
        name=endpoint.name,
        kind=endpoint.kind,
        agent=endpoint.config.get("agent"),
        state=endpoint.state,
        error=endpoint.error,
        run_id=endpoint.run_id,
        rate_limit=endpoint.rate_limit,
        url=endpoint_url(svc, endpoint.name),
        config=dict(endpoint.config),
        usage=EndpointUsage(
            requests=int(usage.get("requests", 0)),
            errors=int(usage.get("errors", 0)),
            input_tokens=int(usage.get("input_tokens", 0)),
            output_tokens=int(usage.get("output_tokens", 0)),
            latency_ms=LatencyPercentiles(
                p50=_percentile(samples, 0.50), p90=_percentile(samples, 0.90), p99=_percentile(samples, 0.99)
            ),
        ),
        created_by=endpoint.created_by,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


def _percentile(samples: list[float], q: float) -> float | None:
    if not samples:
        return None
    return round(samples[min(len(samples) - 1, int(q * len(samples)))], 2)


def deploy_agent(
    svc: Services,
    principal: Principal,
    agent: str,
    endpoint_name: str,
    /,
    *,
    rate_limit: str | None = None,
    workload_size: str = "Small",
    wait_seconds: float | None = None,
) -> EndpointPublic:
    """Create (or redeploy) ``endpoint_name`` serving ``agent`` as it is now; a run checks that its
    model is there and makes it READY, or FAILED with why. Answers after a bounded wait."""
    principal.require(Scope.WRITE)
    check_name(endpoint_name, what="endpoint name")
    limit = rate_limit or svc.settings.serving.rate_limit
    parse_rate(limit)
    if workload_size not in WORKLOAD_SIZES:
        raise InvalidInput(f"workload_size must be one of {', '.join(WORKLOAD_SIZES)}")
    with svc.store.session(write_lock=True) as session:
        row = serving_repo.get_agent(session, agent, tenant_id=principal.tenant_id)
        config = {"agent": row.name, "agent_version": row.version, "workload_size": workload_size, **row.definition}
        try:
            endpoint = serving_repo.get_endpoint(session, endpoint_name, tenant_id=principal.tenant_id)
        except NotFound:
            endpoint = serving_repo.create_endpoint(
                session,
                tenant_id=principal.tenant_id,
                name=endpoint_name,
                kind="agent",
                agent_id=row.id,
                config=config,
                rate_limit=limit,
                created_by=principal.subject,
            )
        else:
            if endpoint.state == "NOT_READY" and endpoint.run_id is not None:
                raise Conflict(f"endpoint {endpoint_name!r} is being deployed; wait for run {endpoint.run_id}")
            endpoint.agent_id, endpoint.config, endpoint.rate_limit = row.id, config, limit
            endpoint.state, endpoint.error = "NOT_READY", None
        endpoint_id = endpoint.id
        audit_repo.record_audit(
            session,
            action="endpoint.deploy",
            subject=principal.subject,
            tenant_id=principal.tenant_id,
            target=endpoint_name,
            meta={"agent": row.name},
        )
    run_id = runs.submit(svc, principal, DEPLOY_KIND, params={"endpoint_id": endpoint_id}, resource_id=endpoint_id)
    with svc.store.session() as session:  # the run may have ended already: its state stays
        serving_repo.set_endpoint_run(session, endpoint_id, run_id)
    wait = svc.settings.serving.deploy_wait_seconds if wait_seconds is None else wait_seconds
    runs.wait_for_run(svc, principal, run_id, timeout=wait)
    return get_endpoint(svc, principal, endpoint_name)


def deploy_model(
    svc: Services,
    principal: Principal,
    model_name: str,
    /,
    *,
    model_version: str = "1",
    endpoint_name: str | None = None,
    workload_size: str = "Small",
) -> dict[str, Any]:
    """The seeds' ``deploy_model``: ``model_name`` is an agent of the tenant (its current version is
    served; ``model_version`` is recorded), deployed like :func:`deploy_agent`."""
    deployed = deploy_agent(svc, principal, model_name, endpoint_name or model_name, workload_size=workload_size)
    return {
        "endpoint_name": deployed.name,
        "endpoint_url": deployed.url,
        "state": deployed.state,
        "error": deployed.error,
        "model_name": model_name,
        "model_version": model_version,
        "served_agent_version": deployed.config.get("agent_version"),
        "run_id": deployed.run_id,
    }


def _deploy(svc: Services, ctx: RunContext) -> dict[str, Any]:
    endpoint_id = str(ctx.params["endpoint_id"])
    principal = ctx.principal
    with svc.store.session() as session:
        endpoint = serving_repo.get_endpoint(session, endpoint_id, tenant_id=principal.tenant_id)
        definition = AgentDefinition.model_validate(
            {k: v for k, v in endpoint.config.items() if k in AgentDefinition.model_fields}
        )
        name = endpoint.name
    ctx.progress(message=f"checking the model of {name}", force=True)
    try:
        model = resolve_model(svc, definition.model)
        if isinstance(model, DatabricksEndpointChat) and not model.serving.ready(model.model):
            raise ModelUnavailable(f"the serving endpoint {model.model} is not READY on the workspace yet")
    except TsunamiError as exc:
        with svc.store.session() as session:
            serving_repo.set_endpoint_state(session, endpoint_id, state="FAILED", error=exc.message)
        raise
    with svc.store.session() as session:
        serving_repo.set_endpoint_state(session, endpoint_id, state="READY")
    return {"endpoint": name, "state": "READY", "model": getattr(model, "model", definition.model)}


register(RunKind(DEPLOY_KIND, _deploy))


def get_endpoint(svc: Services, principal: Principal, name: str, /) -> EndpointPublic:
    principal.require(Scope.READ)
    with svc.store.session() as session:
        return public(svc, serving_repo.get_endpoint(session, name, tenant_id=principal.tenant_id))


def list_endpoints(svc: Services, principal: Principal, /) -> EndpointList:
    principal.require(Scope.READ)
    with svc.store.session() as session:
        found = serving_repo.list_endpoints(session, tenant_id=principal.tenant_id)
        return EndpointList(endpoints=[public(svc, e) for e in found])


def delete_endpoint(svc: Services, principal: Principal, name: str, /) -> EndpointPublic:
    principal.require(Scope.WRITE)
    with svc.store.session() as session:
        endpoint = serving_repo.get_endpoint(session, name, tenant_id=principal.tenant_id)
        kind, config = endpoint.kind, dict(endpoint.config)
    if kind == workspace.KIND:
        workspace.delete_remote(svc, config)  # the workspace's endpoint first: none is left behind unseen
    with svc.store.session(write_lock=True) as session:
        endpoint = serving_repo.get_endpoint(session, name, tenant_id=principal.tenant_id)
        gone = public(svc, endpoint)
        serving_repo.delete_endpoint(session, endpoint)
        audit_repo.record_audit(
            session, action="endpoint.delete", subject=principal.subject, tenant_id=principal.tenant_id, target=name
        )
    return gone


@dataclass(frozen=True, slots=True)
class Prepared:
    endpoint_id: str
    name: str
    definition: AgentDefinition
    invocation: wire.Invocation
    workspace: dict[str, Any] | None = None  # a ``model`` endpoint's config: the request is forwarded
    body: Any = None


def prepare_invocation(
    svc: Services, principal: Principal, name: str, body: Any, /, *, limiter: RateLimiter | None
) -> Prepared:
    """Everything that may refuse an invocation before it starts (so a streamed answer never starts
    with an error): the request's shape, the endpoint (READY, of the caller's tenant), its rate limit."""
    principal.require(Scope.READ)
    invocation = wire.parse_request(body)
    with svc.store.session() as session:
        endpoint = serving_repo.get_endpoint(session, name, tenant_id=principal.tenant_id)
        if endpoint.state != "READY":
            why = f": {endpoint.error}" if endpoint.error else ""
            raise Conflict(f"endpoint {name!r} is {endpoint.state}{why}")
        if endpoint.kind == workspace.KIND:
            if invocation.stream:
                raise NotSupported("a Databricks Model Serving endpoint is answered whole here; leave stream out")
            prepared = Prepared(
                endpoint.id, endpoint.name, AgentDefinition(), invocation, workspace=dict(endpoint.config), body=body
            )
        else:
            definition = AgentDefinition.model_validate(
                {k: v for k, v in endpoint.config.items() if k in AgentDefinition.model_fields}
            )
            prepared = Prepared(endpoint.id, endpoint.name, definition, invocation)
        rate = endpoint.rate_limit
    if limiter is not None:
        limiter.hit_rate(
            "endpoint", rate, prepared.endpoint_id, principal.tenant_id, principal.subject, what="endpoint requests"
        )
    return prepared


def execute_invocation(
    svc: Services, principal: Principal, prepared: Prepared, /, *, emit: Emit | None = None
) -> tuple[dict[str, Any], list[AgentResult]]:
    """Run the agent for each conversation of the request; the answer in the request's shape, and
    the agent's results. Recorded (run + usage) whether it succeeded or not."""
    started = time.perf_counter()
    if prepared.workspace is not None:
        return _forward(svc, principal, prepared, started), []
    results: list[AgentResult] = []
    error: TsunamiError | None = None
    try:
        for conversation in prepared.invocation.conversations:
            results.append(run_agent(svc, principal, prepared.definition, conversation, emit=emit))
    except TsunamiError as exc:
        error = exc
    elapsed_ms = (time.perf_counter() - started) * 1000
    record_invocation(
        svc,
        principal,
        results,
        error,
        elapsed_ms=elapsed_ms,
        resource_id=prepared.endpoint_id,
        params={"endpoint": prepared.name, "shape": prepared.invocation.shape},
        endpoint_id=prepared.endpoint_id,
    )
    if error is not None:
        raise error
    return shape_answer(prepared, results), results


def _forward(svc: Services, principal: Principal, prepared: Prepared, started: float, /) -> dict[str, Any]:
    """A ``model`` endpoint's invocation: the request forwarded to the workspace endpoint, recorded
    like an agent's (tokens from the answer's ``usage`` when it has one)."""
    assert prepared.workspace is not None
    answer: dict[str, Any] = {}
    error: TsunamiError | None = None
    try:
        answer = workspace.invoke_remote(svc, prepared.workspace, prepared.body)
    except TsunamiError as exc:
        error = exc
    found = answer.get("usage")
    usage: dict[str, Any] = found if isinstance(found, dict) else {}
    record_invocation(
        svc,
        principal,
        [],
        error,
        elapsed_ms=(time.perf_counter() - started) * 1000,
        resource_id=prepared.endpoint_id,
        params={"endpoint": prepared.name, "shape": prepared.invocation.shape},
        endpoint_id=prepared.endpoint_id,
        tokens=(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)),
    )
    if error is not None:
        raise error
    return answer


def shape_answer(prepared: Prepared, results: list[AgentResult], /) -> dict[str, Any]:
    tokens_in = sum(r.input_tokens for r in results)
    tokens_out = sum(r.output_tokens for r in results)
    model = next((r.model for r in results if r.model), None) or prepared.definition.model
    if prepared.invocation.shape == "chat":
        return wire.chat_completion(results[0].text, model=model, input_tokens=tokens_in, output_tokens=tokens_out)
    if prepared.invocation.shape == "responses":
        return wire.response(results[0].messages, model=model, input_tokens=tokens_in, output_tokens=tokens_out)
    return {"predictions": [r.text for r in results]}


def invoke_endpoint(
    svc: Services, principal: Principal, name: str, body: Any, /, *, limiter: RateLimiter | None = None
) -> dict[str, Any]:
    """Invoke ``name`` with a Databricks request body (not streamed); the answer in its shape."""
    prepared = prepare_invocation(svc, principal, name, body, limiter=limiter)
    if prepared.invocation.stream:
        raise InvalidInput("streaming is answered over HTTP (server-sent events), not here; leave stream out")
    answer, _ = execute_invocation(svc, principal, prepared)
    return answer


def record_invocation(
    svc: Services,
    principal: Principal,
    results: list[AgentResult],
    error: TsunamiError | None,
    /,
    *,
    elapsed_ms: float,
    resource_id: str,
    params: dict[str, Any],
    endpoint_id: str | None,
    tokens: tuple[int, int] = (0, 0),
) -> str:
    """Record one invocation as a finished ``agent_invocation`` run (trace, tokens) and, for an
    endpoint, in its usage; returns the run id."""
    trace = [t for r in results for t in r.trace]
    tokens_in = sum(r.input_tokens for r in results) + tokens[0]
    tokens_out = sum(r.output_tokens for r in results) + tokens[1]
    outcome = {
        "steps": sum(r.steps for r in results),
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "tool_calls": trace,
        "elapsed_ms": round(elapsed_ms, 2),
    }
    with svc.store.session(write_lock=True) as session:
        run = runs_repo.create_run(
            session,
            tenant_id=principal.tenant_id,
            kind=INVOCATION_KIND,
            subject=principal.subject,
            role=principal.run_role.value,
            params=params,
            resource_id=resource_id,
        )
        runs_repo.finish(
            session,
            run.id,
            state="failed" if error is not None else "succeeded",
            result=outcome,
            error=error.message if error is not None else None,
            error_code=error.code if error is not None else None,
        )
        if endpoint_id is not None:
            endpoint = session.get(ServingEndpoint, endpoint_id, with_for_update=True)
            if endpoint is not None:
                usage = dict(endpoint.meta.get("usage") or {})
                counts = {"requests": 1, "errors": int(error is not None)}
                counts |= {"input_tokens": tokens_in, "output_tokens": tokens_out}
                for key, value in counts.items():
                    usage[key] = int(usage.get(key, 0)) + value
                samples = [*(endpoint.meta.get("latencies_ms") or []), round(elapsed_ms, 2)][-LATENCY_SAMPLES:]
                endpoint.meta["usage"] = usage
                endpoint.meta["latencies_ms"] = samples
        return run.id


def added_turns(results: list[AgentResult]) -> list[Message]:
    return [m for r in results for m in r.messages]
