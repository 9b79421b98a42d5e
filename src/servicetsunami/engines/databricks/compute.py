"""All-purpose clusters of the Databricks engine, through the Clusters API: list, get, start,
terminate (``clusters/delete``, which stops a cluster and keeps its definition) and resize. Each call
asks and returns at once with the state the workspace reports; callers poll :meth:`get_cluster`.

The Clusters API answers an unknown cluster id with ``400 INVALID_PARAMETER_VALUE`` ("Cluster ...
does not exist") rather than a 404; that one is reported as not found."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from servicetsunami.engines.base import ClusterInfo
from servicetsunami.engines.databricks.workspace import Workspace
from servicetsunami.errors import InvalidInput, NotFound

T = TypeVar("T")


class DatabricksClusters:
    """Cluster operations of :class:`~servicetsunami.engines.databricks.engine.DatabricksEngine`."""

    ws: Workspace

    def list_clusters(self) -> list[ClusterInfo]:
        return [
            _cluster(c) for c in self.ws.call(lambda: list(self.ws.client.clusters.list()), action="listing clusters")
        ]

    def get_cluster(self, cluster_id: str, /) -> ClusterInfo:
        return _cluster(self._call(cluster_id, "reading", lambda: self.ws.client.clusters.get(cluster_id)))

    def start_cluster(self, cluster_id: str, /) -> ClusterInfo:
        self._call(cluster_id, "starting", lambda: self.ws.client.clusters.start(cluster_id))
        return self.get_cluster(cluster_id)

    def terminate_cluster(self, cluster_id: str, /) -> ClusterInfo:
        self._call(cluster_id, "terminating", lambda: self.ws.client.clusters.delete(cluster_id))
        return self.get_cluster(cluster_id)

    def resize_cluster(
        self, cluster_id: str, /, *, num_workers: int | None = None, autoscale: tuple[int, int] | None = None
    ) -> ClusterInfo:
        from databricks.sdk.service.compute import AutoScale

        scale = AutoScale(min_workers=autoscale[0], max_workers=autoscale[1]) if autoscale else None
        self._call(
            cluster_id,
            "resizing",
            lambda: self.ws.client.clusters.resize(cluster_id, num_workers=num_workers, autoscale=scale),
        )
        return self.get_cluster(cluster_id)

    def _call(self, cluster_id: str, doing: str, fn: Callable[[], T]) -> T:
        try:
            return self.ws.call(fn, action=f"{doing} cluster {cluster_id}")
        except InvalidInput as exc:
            if "does not exist" in str(exc):
                raise NotFound(f"cluster {cluster_id} does not exist in the workspace") from exc
            raise


def _cluster(info: Any) -> ClusterInfo:
    scale = info.autoscale
    detail = {
        k: v
        for k, v in {
            "spark_version": info.spark_version,
            "node_type_id": info.node_type_id,
            "driver_node_type_id": info.driver_node_type_id,
            "autotermination_minutes": info.autotermination_minutes,
            "data_security_mode": info.data_security_mode.value if info.data_security_mode else None,
            "creator": info.creator_user_name,
        }.items()
        if v is not None
    }
    return ClusterInfo(
        id=str(info.cluster_id),
        name=str(info.cluster_name or info.cluster_id),
        state=info.state.value if info.state is not None else "UNKNOWN",
        state_message=str(info.state_message or ""),
        num_workers=info.num_workers,
        autoscale=(int(scale.min_workers or 0), int(scale.max_workers or 0)) if scale is not None else None,
        kind="databricks",
        detail=detail,
    )
