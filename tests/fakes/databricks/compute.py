"""The fake's compute: all-purpose clusters (Clusters API 2.1: list, get, start, delete (terminate),
resize). State lives in ``WorkspaceState.compute``; shapes follow the SDK's ``ClusterDetails``.

A started cluster answers ``PENDING`` to the next GET and ``RUNNING`` after; a terminated one
``TERMINATING`` then ``TERMINATED``; a resized one ``RESIZING`` then ``RUNNING`` (one poll each, like
the warehouses). A missing cluster is ``400 INVALID_PARAMETER_VALUE`` "Cluster ... does not exist",
as the Clusters API answers (not a 404).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.databricks.state import WorkspaceState

Handler = Callable[[WorkspaceState, Request, bytes], Response]
DEFAULT_CLUSTER_ID = "0101-000000-fake0001"
# A state reached by an action, then the state the following GET moves it to.
_SETTLES = {"PENDING": "RUNNING", "TERMINATING": "TERMINATED", "RESIZING": "RUNNING"}


@dataclass
class Cluster:
    id: str
    name: str
    state: str = "RUNNING"
    num_workers: int | None = 1
    autoscale: tuple[int, int] | None = None
    data_security_mode: str = "SINGLE_USER"

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "cluster_id": self.id,
            "cluster_name": self.name,
            "state": self.state,
            "state_message": "" if self.state in ("RUNNING", "TERMINATED") else f"{self.state.title()}...",
            "spark_version": "16.4.x-scala2.13",
            "node_type_id": "i3.xlarge",
            "driver_node_type_id": "i3.xlarge",
            "autotermination_minutes": 60,
            "data_security_mode": self.data_security_mode,
            "cluster_source": "UI",
            "creator_user_name": "fake@example.com",
        }
        if self.autoscale is not None:
            out["autoscale"] = {"min_workers": self.autoscale[0], "max_workers": self.autoscale[1]}
        else:
            out["num_workers"] = self.num_workers
        return out


@dataclass
class WorkspaceObject:
    """A notebook or a file in the workspace tree (folders are ``None`` entries of
    ``ComputeState.objects``)."""

    content: bytes
    format: str  # SOURCE or JUPYTER for a notebook, as imported; RAW for a file
    language: str  # PYTHON, SQL, SCALA or R ("" for a file)
    object_id: int
    created_at: int
    modified_at: int
    object_type: str = "NOTEBOOK"  # or FILE

    @classmethod
    def make(
        cls, content: bytes, format: str, language: str, before: object, object_type: str = "NOTEBOOK"
    ) -> WorkspaceObject:
        now = int(time.time() * 1000)
        if isinstance(before, WorkspaceObject):
            return cls(content, format, language, before.object_id, before.created_at, now, object_type)
        return cls(content, format, language, next(_IDS), now, now, object_type)


_IDS = itertools.count(1_000_000_000_000)


@dataclass
class ComputeState:
    clusters: dict[str, Cluster] = field(default_factory=dict)
    objects: dict[str, WorkspaceObject | None] = field(default_factory=dict)  # workspace path -> notebook


def compute_of(state: WorkspaceState) -> ComputeState:
    with state.lock:
        if state.compute is None:
            state.compute = ComputeState(
                clusters={DEFAULT_CLUSTER_ID: Cluster(DEFAULT_CLUSTER_ID, "Shared cluster")},
                objects={"/Shared": None, "/Users": None, "/Users/fake@example.com": None},
            )
        compute: ComputeState = state.compute
        return compute


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message}, status_code=status)


def _missing(cluster_id: object) -> JSONResponse:
    return _error(400, "INVALID_PARAMETER_VALUE", f"Cluster {cluster_id} does not exist")


def list_clusters(state: WorkspaceState, request: Request, body: bytes) -> Response:
    clusters = compute_of(state).clusters
    with state.lock:
        return JSONResponse({"clusters": [c.info() for c in clusters.values()]})


def get_cluster(state: WorkspaceState, request: Request, body: bytes) -> Response:
    cluster_id = request.query_params.get("cluster_id", "")
    cluster = compute_of(state).clusters.get(cluster_id)
    if cluster is None:
        return _missing(cluster_id)
    with state.lock:
        info = cluster.info()
        cluster.state = _SETTLES.get(cluster.state, cluster.state)
    return JSONResponse(info)


def _action(fn: Callable[[Cluster, dict[str, Any]], Response | None]) -> Handler:
    def endpoint(state: WorkspaceState, request: Request, body: bytes) -> Response:
        req = json.loads(body or b"{}")
        cluster = compute_of(state).clusters.get(str(req.get("cluster_id", "")))
        if cluster is None:
            return _missing(req.get("cluster_id"))
        with state.lock:
            refused = fn(cluster, req)
        return refused or JSONResponse({})

    return endpoint


def _start(cluster: Cluster, req: dict[str, Any]) -> Response | None:
    if cluster.state != "TERMINATED":
        return _error(400, "INVALID_STATE", f"Cluster {cluster.id} is in unexpected state {cluster.state}.")
    cluster.state = "PENDING"
    return None


def _terminate(cluster: Cluster, req: dict[str, Any]) -> Response | None:
    if cluster.state not in ("TERMINATED", "TERMINATING"):
        cluster.state = "TERMINATING"
    return None


def _resize(cluster: Cluster, req: dict[str, Any]) -> Response | None:
    if cluster.state != "RUNNING":
        return _error(400, "INVALID_STATE", f"Cluster {cluster.id} is in unexpected state {cluster.state}.")
    if "autoscale" in req:
        cluster.autoscale = (int(req["autoscale"]["min_workers"]), int(req["autoscale"]["max_workers"]))
        cluster.num_workers = None
    elif "num_workers" in req:
        cluster.num_workers, cluster.autoscale = int(req["num_workers"]), None
    else:
        return _error(400, "INVALID_PARAMETER_VALUE", "Exactly one of num_workers or autoscale must be set")
    cluster.state = "RESIZING"
    return None


def routes(handler: Callable[[Handler], Any]) -> list[Route]:
    """The compute endpoints, each wrapped by the app's ``handler`` (token -> workspace state)."""
    return [
        Route("/api/2.1/clusters/list", handler(list_clusters)),
        Route("/api/2.1/clusters/get", handler(get_cluster)),
        Route("/api/2.1/clusters/start", handler(_action(_start)), methods=["POST"]),
        Route("/api/2.1/clusters/delete", handler(_action(_terminate)), methods=["POST"]),
        Route("/api/2.1/clusters/resize", handler(_action(_resize)), methods=["POST"]),
    ]
