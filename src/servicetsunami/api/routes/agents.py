"""Agents: ``/agents`` (create, list), ``/agents/{agent}`` (get, update, delete) and
``/agents/{agent}/deploy`` (a serving endpoint serving it; a run, answered after a bounded wait)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from servicetsunami.api.deps import PrincipalDep, ServicesDep
from servicetsunami.api.schemas.common import COMMON_ERRORS
from servicetsunami.api.schemas.serving import AgentCreate, AgentDeploy, AgentUpdate
from servicetsunami.services.serving import agents, endpoints
from servicetsunami.services.serving.agents import AgentList, AgentPublic
from servicetsunami.services.serving.endpoints import EndpointPublic

router = APIRouter(prefix="/agents", tags=["agents"])


@router.post("", operation_id="create_agent", status_code=201, response_model=AgentPublic, responses=COMMON_ERRORS)
async def create_agent(body: AgentCreate, services: ServicesDep, principal: PrincipalDep) -> AgentPublic:
    """Create an agent: instructions, a model, the tenant's SQL tools and vector indexes."""
    fields = body.model_dump(exclude={"name"})
    return await run_in_threadpool(lambda: agents.create_agent(services, principal, body.name, **fields))


@router.get("", operation_id="list_agents", response_model=AgentList, responses=COMMON_ERRORS)
async def list_agents(services: ServicesDep, principal: PrincipalDep) -> AgentList:
    """The tenant's agents."""
    return await run_in_threadpool(agents.list_agents, services, principal)


@router.get("/{agent}", operation_id="get_agent", response_model=AgentPublic, responses=COMMON_ERRORS)
async def get_agent(agent: str, services: ServicesDep, principal: PrincipalDep) -> AgentPublic:
    """One agent, by name or id."""
    return await run_in_threadpool(agents.get_agent, services, principal, agent)


@router.patch("/{agent}", operation_id="update_agent", response_model=AgentPublic, responses=COMMON_ERRORS)
async def update_agent(agent: str, body: AgentUpdate, services: ServicesDep, principal: PrincipalDep) -> AgentPublic:
    """Change the given fields; deployed endpoints keep their copy until deployed again."""
    fields = body.model_dump()
    return await run_in_threadpool(lambda: agents.update_agent(services, principal, agent, **fields))


@router.delete("/{agent}", operation_id="delete_agent", response_model=AgentPublic, responses=COMMON_ERRORS)
async def delete_agent(agent: str, services: ServicesDep, principal: PrincipalDep) -> AgentPublic:
    """Delete an agent (its endpoints keep serving their copy until deleted)."""
    return await run_in_threadpool(agents.delete_agent, services, principal, agent)


@router.post(
    "/{agent}/deploy",
    operation_id="deploy_agent",
    status_code=202,
    response_model=EndpointPublic,
    responses=COMMON_ERRORS,
)
async def deploy_agent(agent: str, body: AgentDeploy, services: ServicesDep, principal: PrincipalDep) -> EndpointPublic:
    """Deploy the agent (as it is now) as the serving endpoint ``name``; deploying again to the same
    name serves the agent's newer definition."""
    return await run_in_threadpool(
        lambda: endpoints.deploy_agent(
            services,
            principal,
            agent,
            body.name,
            rate_limit=body.rate_limit,
            workload_size=body.workload_size,
            wait_seconds=body.wait_seconds,
        )
    )
