"""Compute for code: ``list_clusters``, ``get_cluster`` and, for admins, ``start_cluster``,
``terminate_cluster``, ``resize_cluster``.

On an engine with clusters (Databricks) these are the workspace's all-purpose clusters. Elsewhere
code runs in this server's sandbox pool, shown as one compute, ``sandbox``: its state (``RUNNING``
when kernels can start, ``ERROR`` with the reason when they cannot), how code is confined, the
caller's live execution contexts and the limits every kernel gets. The pool has nothing to start,
stop or resize (it is this server; its size is settings), so those answer ``not_supported``.

A workspace's cluster listing is remembered for ``cache.ttl.clusters`` seconds (one Clusters API call
on Databricks) and forgotten by every tenant when a cluster is started, terminated or resized through
the service; the sandbox pool, which shows the caller's live contexts, is read every time.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from servicetsunami.engines.base import ClusterInfo
from servicetsunami.errors import InvalidInput, NotFound, NotSupported, SandboxUnavailable
from servicetsunami.runs.sandbox import bwrap
from servicetsunami.services.notebooks import contexts
from servicetsunami.services.notebooks.runs import sandbox_mode
from servicetsunami.services.ops import listings
from servicetsunami.tenancy import Principal, Scope

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

KIND = "clusters"  # the listing cache's kind (settings cache.ttl.clusters)
SANDBOX_POOL_ID = "sandbox"
MAX_WORKERS = 1000
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


class AutoScale(BaseModel):
    min_workers: int = Field(ge=0, le=MAX_WORKERS)
    max_workers: int = Field(ge=1, le=MAX_WORKERS)


class Cluster(BaseModel):
    """Compute that runs notebooks and execution contexts."""

    id: str
    name: str
    state: str = Field(description="PENDING, RUNNING, RESTARTING, RESIZING, TERMINATING, TERMINATED or ERROR")
    state_message: str = ""
    num_workers: int | None = Field(None, description="Workers of a fixed-size cluster")
    autoscale: AutoScale | None = None
    engine: str = Field(description="The engine the compute belongs to")
    detail: dict[str, Any] = Field(default_factory=dict)


def list_clusters(svc: Services, principal: Principal, /) -> list[Cluster]:
    principal.require(Scope.READ)
    if not svc.engine.capabilities.clusters:
        return [_sandbox_pool(svc, principal)]
    return listings.cached(svc, KIND, principal, (), lambda: [_view(c) for c in svc.engine.list_clusters()])


def get_cluster(svc: Services, principal: Principal, cluster_id: str, /) -> Cluster:
    principal.require(Scope.READ)
    checked = _checked(cluster_id)
    if not svc.engine.capabilities.clusters:
        if checked != SANDBOX_POOL_ID:
            raise NotFound(f"no cluster {checked!r}: code runs in this server's sandbox pool, {SANDBOX_POOL_ID!r}")
        return _sandbox_pool(svc, principal)
    return _view(svc.engine.get_cluster(checked))


def start_cluster(svc: Services, principal: Principal, cluster_id: str, /) -> Cluster:
    """Ask a terminated cluster to start; returns at once (poll get_cluster until RUNNING)."""
    principal.require(Scope.MANAGE)
    return _changed(svc, _view(svc.engine.start_cluster(_remote(svc, cluster_id, "started"))))


def terminate_cluster(svc: Services, principal: Principal, cluster_id: str, /) -> Cluster:
    """Ask a cluster to terminate (its definition stays; it can be started again)."""
    principal.require(Scope.MANAGE)
    return _changed(svc, _view(svc.engine.terminate_cluster(_remote(svc, cluster_id, "terminated"))))


def resize_cluster(
    svc: Services,
    principal: Principal,
    cluster_id: str,
    /,
    *,
    num_workers: int | None = None,
    autoscale: AutoScale | None = None,
) -> Cluster:
    """Give a running cluster a fixed number of workers or an autoscale range (exactly one)."""
    principal.require(Scope.MANAGE)
    if (num_workers is None) == (autoscale is None):
        raise InvalidInput("give exactly one of num_workers or autoscale")
    if num_workers is not None and not 0 <= num_workers <= MAX_WORKERS:
        raise InvalidInput(f"num_workers is between 0 and {MAX_WORKERS}")
    if autoscale is not None and autoscale.min_workers > autoscale.max_workers:
        raise InvalidInput("autoscale.min_workers cannot be above max_workers")
    checked = _remote(svc, cluster_id, "resized")
    scale = (autoscale.min_workers, autoscale.max_workers) if autoscale is not None else None
    return _changed(svc, _view(svc.engine.resize_cluster(checked, num_workers=num_workers, autoscale=scale)))


def _changed(svc: Services, cluster: Cluster) -> Cluster:
    """After a cluster action: the workspace's clusters, which every tenant lists, are stale."""
    listings.invalidate(svc, listings.EVERY_TENANT, KIND)
    return cluster


def _remote(svc: Services, cluster_id: str, what: str) -> str:
    checked = _checked(cluster_id)
    if not svc.engine.capabilities.clusters:
        raise NotSupported(
            f"clusters cannot be {what} on the {svc.engine.kind} engine: code runs in this server's sandbox "
            "pool, whose limits are settings (TSUNAMI_SANDBOX__*)"
        )
    return checked


def _checked(cluster_id: object) -> str:
    if not isinstance(cluster_id, str) or not _ID.fullmatch(cluster_id):
        raise InvalidInput("a cluster id is 1-100 letters, digits, '.', '-' or '_'; list_clusters shows the ids")
    return cluster_id


def _sandbox_pool(svc: Services, principal: Principal) -> Cluster:
    s = svc.settings.sandbox
    try:
        sandboxed = sandbox_mode(svc)
    except SandboxUnavailable as exc:
        state, message, confinement = "ERROR", str(exc), "none: code does not run"
    else:
        state, message = "RUNNING", "kernels start on demand"
        if not sandboxed:
            confinement = "none: the operator allowed unsandboxed code (single-user mode)"
        elif bwrap.running_as_root():
            confinement = f"bubblewrap, separate uid {s.uid}"
        else:
            confinement = "bubblewrap in a user namespace, the service's uid"
    return Cluster(
        id=SANDBOX_POOL_ID,
        name="sandbox pool (this server)",
        state=state,
        state_message=message,
        engine=svc.engine.kind,
        detail={
            "sandbox": confinement,
            "live_contexts": contexts.live_contexts(svc, principal.tenant_id),
            "max_contexts_per_tenant": s.max_contexts_per_tenant,
            "context_idle_seconds": s.context_idle_seconds,
            "max_parallel_notebook_runs": s.max_parallel,
            "notebook_timeout_seconds": s.notebook_timeout_seconds,
            "memory_mb": s.memory_mb,
            "cpu_seconds": s.cpu_seconds,
            "processes": s.processes,
            "file_mb": s.file_mb,
            "network": "none",
        },
    )


def _view(c: ClusterInfo) -> Cluster:
    scale = AutoScale(min_workers=c.autoscale[0], max_workers=c.autoscale[1]) if c.autoscale else None
    return Cluster(
        id=c.id,
        name=c.name,
        state=c.state,
        state_message=c.state_message,
        num_workers=c.num_workers,
        autoscale=scale,
        engine=c.kind,
        detail=c.detail,
    )
