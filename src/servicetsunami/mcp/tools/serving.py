"""Agents and serving endpoints: ``create_agent``, ``update_agent``, ``get_agent``, ``list_agents``,
``delete_agent``, ``deploy_agent``, ``list_endpoints``, ``get_endpoint``, ``delete_endpoint``,
``invoke_endpoint`` (any Databricks request shape, answered whole), and the seeds' ``deploy_model``
and ``invoke_model``, mapped onto the same machinery; ``deploy_workspace_model`` (Databricks Model
Serving). Invocations count against the endpoint's own
rate limit, shared with the REST door."""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastmcp import FastMCP
from fastmcp.tools.base import ToolResult
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from servicetsunami.mcp.auth import Caller
from servicetsunami.mcp.errors import call_service
from servicetsunami.mcp.results import output_schema, tool_result
from servicetsunami.security.ratelimits import RateLimiter, open_rate_limiter
from servicetsunami.services.container import Services
from servicetsunami.services.serving import agents, endpoints, workspace
from servicetsunami.services.serving.agents import AgentList, AgentPublic
from servicetsunami.services.serving.endpoints import EndpointList, EndpointPublic

_READ = ToolAnnotations(title="Agents and endpoints", read_only_hint=True, open_world_hint=False)
_WRITE = ToolAnnotations(
    title="Change an agent or endpoint",
    read_only_hint=False,
    destructive_hint=False,
    idempotent_hint=False,
    open_world_hint=False,
)
_DELETE = ToolAnnotations(
    title="Delete", read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
)
_INVOKE = ToolAnnotations(title="Invoke an endpoint", read_only_hint=True, idempotent_hint=False, open_world_hint=True)

AgentRef = Annotated[str, Field(description="An agent's name or id")]
EndpointRef = Annotated[str, Field(description="A serving endpoint's name")]
Instructions = Annotated[str | None, Field(description="The system prompt")]
Model = Annotated[
    str | None, Field(description="'default' (the configured provider), a model name, or 'endpoint:<name>'")
]
Tools = Annotated[list[str] | None, Field(description="Any of query_sql, list_tables, describe_table")]
Indexes = Annotated[list[str] | None, Field(description="Vector index names the agent may search")]


class Invocation(BaseModel):
    endpoint: str
    answer: dict[str, Any] = Field(description="chat.completion, response, or {predictions}, by request shape")


class ModelDeployment(BaseModel):
    endpoint_name: str
    endpoint_url: str
    state: str
    error: str | None = None
    model_name: str
    model_version: str
    served_agent_version: int | None = None
    run_id: str | None = None


def register(server: FastMCP, services: Services, caller: Caller) -> None:
    limiter_box: list[RateLimiter] = []
    lock = threading.Lock()

    def limiter() -> RateLimiter:
        with lock:
            if not limiter_box:
                limiter_box.append(open_rate_limiter(services.settings))
            return limiter_box[0]

    @server.tool(tags={"write"}, annotations=_WRITE, output_schema=output_schema(AgentPublic))
    async def create_agent(
        name: Annotated[str, Field(description="Letters, digits, '_' and '-', starting with a letter")],
        instructions: Instructions = None,
        model: Model = None,
        tools: Tools = None,
        vector_indexes: Indexes = None,
        description: str | None = None,
    ) -> ToolResult:
        """Create an agent: instructions, a model, your SQL tools and vector indexes. Deploy it with
        deploy_agent to serve it at an endpoint."""
        fields: dict[str, Any] = {"instructions": instructions, "model": model, "tools": tools}
        fields |= {"vector_indexes": vector_indexes, "description": description}
        return tool_result(await call_service(agents.create_agent, services, caller.principal(), name, **fields))

    @server.tool(tags={"write"}, annotations=_WRITE, output_schema=output_schema(AgentPublic))
    async def update_agent(
        agent: AgentRef,
        instructions: Instructions = None,
        model: Model = None,
        tools: Tools = None,
        vector_indexes: Indexes = None,
        description: str | None = None,
    ) -> ToolResult:
        """Change an agent's given fields (endpoints serve the new definition once deployed again)."""
        fields: dict[str, Any] = {"instructions": instructions, "model": model, "tools": tools}
        fields |= {"vector_indexes": vector_indexes, "description": description}
        return tool_result(await call_service(agents.update_agent, services, caller.principal(), agent, **fields))

    @server.tool(tags={"read"}, annotations=_READ, output_schema=output_schema(AgentPublic))
    async def get_agent(agent: AgentRef) -> ToolResult:
        """One agent's definition."""
        return tool_result(await call_service(agents.get_agent, services, caller.principal(), agent))

    @server.tool(tags={"read"}, annotations=_READ, output_schema=output_schema(AgentList))
    async def list_agents() -> ToolResult:
        """Your agents."""
        return tool_result(await call_service(agents.list_agents, services, caller.principal()))

    @server.tool(tags={"write"}, annotations=_DELETE, output_schema=output_schema(AgentPublic))
    async def delete_agent(agent: AgentRef) -> ToolResult:
        """Delete an agent (its endpoints keep serving their copy until deleted)."""
        return tool_result(await call_service(agents.delete_agent, services, caller.principal(), agent))

    @server.tool(tags={"write"}, annotations=_WRITE, output_schema=output_schema(EndpointPublic))
    async def deploy_agent(
        agent: AgentRef,
        endpoint_name: Annotated[str, Field(description="The endpoint's name (in its URL)")],
        rate_limit: Annotated[str | None, Field(description="Requests per caller, like '100/minute'")] = None,
    ) -> ToolResult:
        """Serve an agent at a serving endpoint (a run: NOT_READY, then READY or FAILED with why)."""
        return tool_result(
            await call_service(
                endpoints.deploy_agent, services, caller.principal(), agent, endpoint_name, rate_limit=rate_limit
            )
        )

    @server.tool(tags={"read"}, annotations=_READ, output_schema=output_schema(EndpointList))
    async def list_endpoints() -> ToolResult:
        """Your serving endpoints, with state and usage."""
        return tool_result(await call_service(endpoints.list_endpoints, services, caller.principal()))

    @server.tool(tags={"read"}, annotations=_READ, output_schema=output_schema(EndpointPublic))
    async def get_endpoint(name: EndpointRef) -> ToolResult:
        """One endpoint: state, URL, what it serves, usage (requests, errors, tokens, latency percentiles)."""
        return tool_result(await call_service(endpoints.get_endpoint, services, caller.principal(), name))

    @server.tool(tags={"write"}, annotations=_DELETE, output_schema=output_schema(EndpointPublic))
    async def delete_endpoint(name: EndpointRef) -> ToolResult:
        """Delete a serving endpoint."""
        return tool_result(await call_service(endpoints.delete_endpoint, services, caller.principal(), name))

    async def _invoke(name: str, body: dict[str, Any]) -> ToolResult:
        answer = await call_service(
            endpoints.invoke_endpoint, services, caller.principal(), name, body, limiter=limiter()
        )
        return tool_result(Invocation(endpoint=name, answer=answer))

    @server.tool(tags={"read"}, annotations=_INVOKE, output_schema=output_schema(Invocation))
    async def invoke_endpoint(
        name: EndpointRef,
        request: Annotated[
            dict[str, Any],
            Field(
                description=(
                    "A Databricks request: {messages: [{role, content}]}, {input: text or items}, "
                    "{dataframe_records: [...]}, {dataframe_split: {columns, data}} or {instances: [...]}"
                )
            ),
        ],
    ) -> ToolResult:
        """Ask a serving endpoint (an agent that may query your tables) and get its whole answer."""
        return await _invoke(name, request)

    @server.tool(tags={"write"}, annotations=_WRITE, output_schema=output_schema(ModelDeployment))
    async def deploy_model(
        model_name: Annotated[str, Field(description="The agent to serve (agents are the models served here)")],
        model_version: Annotated[str, Field(description="Recorded; the agent's current definition is served")] = "1",
        endpoint_name: Annotated[str | None, Field(description="Default: the model name")] = None,
        workload_size: Annotated[str, Field(description="Small, Medium or Large")] = "Small",
    ) -> ToolResult:
        """Deploy a model (an agent of yours) to a serving endpoint; answers its name and URL."""
        deployed = await call_service(
            endpoints.deploy_model,
            services,
            caller.principal(),
            model_name,
            model_version=model_version,
            endpoint_name=endpoint_name,
            workload_size=workload_size,
        )
        return tool_result(ModelDeployment.model_validate(deployed))

    @server.tool(tags={"write"}, annotations=_WRITE, output_schema=output_schema(EndpointPublic))
    async def deploy_workspace_model(
        name: EndpointRef,
        entity_name: Annotated[
            str, Field(description="<your catalog>.<schema>.<model> (Unity Catalog) or system.ai.<model>")
        ],
        entity_version: Annotated[str | None, Field(description="The model version, like '3'")] = None,
        workload_size: Annotated[str, Field(description="Small, Medium or Large")] = "Small",
        rate_limit: Annotated[str | None, Field(description="Requests per caller, like '100/minute'")] = None,
    ) -> ToolResult:
        """Databricks engine: serve a Unity Catalog or Foundation Model on a Model Serving endpoint (a run:
        NOT_READY, then READY or FAILED); invoke it with invoke_endpoint."""
        return tool_result(
            await call_service(
                workspace.deploy_workspace_model,
                services,
                caller.principal(),
                name,
                entity_name=entity_name,
                entity_version=entity_version,
                workload_size=workload_size,
                rate_limit=rate_limit,
            )
        )

    @server.tool(tags={"read"}, annotations=_INVOKE, output_schema=output_schema(Invocation))
    async def invoke_model(
        endpoint_name: EndpointRef,
        inputs: Annotated[
            dict[str, Any] | list[Any] | str,
            Field(description="A Databricks request object, a list of rows (instances), or a question"),
        ],
    ) -> ToolResult:
        """Invoke a deployed model's endpoint with inputs (a request, rows, or one question)."""
        if isinstance(inputs, str):
            body: dict[str, Any] = {"messages": [{"role": "user", "content": inputs}]}
        elif isinstance(inputs, list):
            body = {"instances": inputs}
        else:
            body = inputs
        return await _invoke(endpoint_name, body)
