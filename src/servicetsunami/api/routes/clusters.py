"""Compute for code: the workspace's all-purpose clusters on Databricks, or this server's sandbox
pool as one compute (``sandbox``) elsewhere. Starting, terminating and resizing are for admins, and
answer ``not_supported`` on engines without clusters."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from servicetsunami.api.deps import PrincipalDep, ServicesDep
from servicetsunami.api.schemas.common import COMMON_ERRORS, problem_responses
from servicetsunami.services.notebooks import compute
from servicetsunami.services.notebooks.compute import AutoScale, Cluster

router = APIRouter(prefix="/clusters", tags=["clusters"])
MANAGE_ERRORS = {**COMMON_ERRORS, **problem_responses(501)}


class ClusterList(BaseModel):
    clusters: list[Cluster]


class ClusterResize(BaseModel):
    num_workers: int | None = Field(None, ge=0, le=compute.MAX_WORKERS, description="A fixed number of workers")
    autoscale: AutoScale | None = Field(None, description="Or a range the cluster scales within")


@router.get("", operation_id="list_clusters", response_model=ClusterList, responses=COMMON_ERRORS)
async def list_clusters(services: ServicesDep, principal: PrincipalDep) -> ClusterList:
    """The compute notebooks and execution contexts run on."""
    return ClusterList(clusters=await run_in_threadpool(compute.list_clusters, services, principal))


@router.get("/{cluster_id}", operation_id="get_cluster", response_model=Cluster, responses=COMMON_ERRORS)
async def get_cluster(cluster_id: str, services: ServicesDep, principal: PrincipalDep) -> Cluster:
    """One cluster: state, workers, settings (locally: the sandbox pool and its limits)."""
    return await run_in_threadpool(compute.get_cluster, services, principal, cluster_id)


@router.post("/{cluster_id}/start", operation_id="start_cluster", response_model=Cluster, responses=MANAGE_ERRORS)
async def start_cluster(cluster_id: str, services: ServicesDep, principal: PrincipalDep) -> Cluster:
    """Start a terminated cluster; returns at once (poll the cluster until RUNNING)."""
    return await run_in_threadpool(compute.start_cluster, services, principal, cluster_id)


@router.post(
    "/{cluster_id}/terminate", operation_id="terminate_cluster", response_model=Cluster, responses=MANAGE_ERRORS
)
async def terminate_cluster(cluster_id: str, services: ServicesDep, principal: PrincipalDep) -> Cluster:
    """Terminate a cluster (it can be started again); returns at once."""
    return await run_in_threadpool(compute.terminate_cluster, services, principal, cluster_id)


@router.post("/{cluster_id}/resize", operation_id="resize_cluster", response_model=Cluster, responses=MANAGE_ERRORS)
async def resize_cluster(
    cluster_id: str, body: ClusterResize, services: ServicesDep, principal: PrincipalDep
) -> Cluster:
    """Give a running cluster a fixed number of workers or an autoscale range (exactly one)."""
    return await run_in_threadpool(
        lambda: compute.resize_cluster(
            services, principal, cluster_id, num_workers=body.num_workers, autoscale=body.autoscale
        )
    )
