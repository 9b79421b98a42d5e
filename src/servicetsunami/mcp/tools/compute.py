"""Compute tools: ``list_clusters``, ``get_cluster`` and, for admins, ``start_cluster``,
``terminate_cluster``, ``resize_cluster``. On Databricks the workspace's all-purpose clusters;
locally the server's sandbox pool as one compute (nothing to start, stop or resize there)."""

from __future__ import annotations

from typing import Annotated

from fastmcp import FastMCP
from fastmcp.tools.base import ToolResult
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from servicetsunami.mcp.auth import Caller
from servicetsunami.mcp.errors import call_service
from servicetsunami.mcp.results import output_schema, tool_result
from servicetsunami.services.container import Services
from servicetsunami.services.notebooks import compute
from servicetsunami.services.notebooks.compute import AutoScale, Cluster

_READ = ToolAnnotations(title="Clusters", read_only_hint=True, open_world_hint=False)
_MANAGE = ToolAnnotations(
    title="Manage a cluster", read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
)
ClusterId = Annotated[str, Field(description="The cluster id, as list_clusters shows it")]


class ClusterList(BaseModel):
    clusters: list[Cluster]


def register(server: FastMCP, services: Services, caller: Caller) -> None:
    @server.tool(tags={"read"}, annotations=_READ, output_schema=output_schema(ClusterList))
    async def list_clusters() -> ToolResult:
        """The compute notebooks and execution contexts run on, with state, size and limits."""
        found = await call_service(compute.list_clusters, services, caller.principal())
        return tool_result(ClusterList(clusters=found))

    @server.tool(tags={"read"}, annotations=_READ, output_schema=output_schema(Cluster))
    async def get_cluster(cluster_id: ClusterId) -> ToolResult:
        """One cluster: state (RUNNING, PENDING, TERMINATED ...), workers and settings."""
        return tool_result(await call_service(compute.get_cluster, services, caller.principal(), cluster_id))

    @server.tool(tags={"manage"}, annotations=_MANAGE, output_schema=output_schema(Cluster))
    async def start_cluster(cluster_id: ClusterId) -> ToolResult:
        """Start a terminated cluster. Returns at once (usually PENDING); poll get_cluster."""
        return tool_result(await call_service(compute.start_cluster, services, caller.principal(), cluster_id))

    @server.tool(tags={"manage"}, annotations=_MANAGE, output_schema=output_schema(Cluster))
    async def terminate_cluster(cluster_id: ClusterId) -> ToolResult:
        """Terminate a cluster (it can be started again). Returns at once; poll get_cluster."""
        return tool_result(await call_service(compute.terminate_cluster, services, caller.principal(), cluster_id))

    @server.tool(tags={"manage"}, annotations=_MANAGE, output_schema=output_schema(Cluster))
    async def resize_cluster(
        cluster_id: ClusterId,
        num_workers: Annotated[
            int | None, Field(ge=0, le=compute.MAX_WORKERS, description="A fixed number of workers")
        ] = None,
        autoscale: Annotated[AutoScale | None, Field(description="Or a range the cluster scales within")] = None,
    ) -> ToolResult:
        """Resize a running cluster: a fixed number of workers or an autoscale range (one of them)."""
        return tool_result(
            await call_service(
                compute.resize_cluster,
                services,
                caller.principal(),
                cluster_id,
                num_workers=num_workers,
                autoscale=autoscale,
            )
        )
