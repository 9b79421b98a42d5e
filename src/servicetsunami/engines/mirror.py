"""An engine that also tells the outbox about every write: the local half of the hybrid mode
(``TSUNAMI_ENGINE=local`` with ``TSUNAMI_MIRROR=databricks``).

Writes land on the wrapped engine exactly as before; each write to a bronze, silver or gold table
that committed (not skipped) is then recorded as a mirror job. The write's mode and merge keys travel
in the commit's own info (``tsunami.mirror.*``), so the replay reads them from the table's log and a
job lost between the commit and the outbox row is caught up by the next job of the same table.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import pyarrow as pa

from servicetsunami.engines.base import (
    ArrowResult,
    Capabilities,
    ClusterInfo,
    Engine,
    Idempotency,
    TableDetail,
    VolumeFile,
    WarehouseInfo,
    WriteMode,
    WriteResult,
)
from servicetsunami.engines.models import HistoryEntry
from servicetsunami.sql import GuardedQuery
from servicetsunami.tenancy import LAYERS, TableRef

MODE_KEY = "tsunami.mirror.mode"
KEYS_KEY = "tsunami.mirror.keys"

Enqueue = Callable[[TableRef, WriteResult, WriteMode], None]


def _info(commit_info: dict[str, str] | None, mode: WriteMode, keys: list[str] | None) -> dict[str, str]:
    return {**(commit_info or {}), MODE_KEY: mode, KEYS_KEY: json.dumps(keys or [])}


class MirroredEngine(Engine):
    kind: ClassVar[str] = "local"
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, inner: Engine, enqueue: Enqueue) -> None:
        self.inner = inner
        self.kind = inner.kind  # type: ignore[misc]  # the instance shows the engine it wraps
        self.capabilities = inner.capabilities  # type: ignore[misc]  # as above
        self._enqueue = enqueue

    def _after(self, ref: TableRef, result: WriteResult, mode: WriteMode) -> WriteResult:
        if not result.skipped and ref.schema in LAYERS:
            self._enqueue(ref, result, mode)
        return result

    def ensure_catalog(self, catalog: str, /) -> None:
        self.inner.ensure_catalog(catalog)

    def catalog_exists(self, catalog: str, /) -> bool | None:
        return self.inner.catalog_exists(catalog)

    def write_table(
        self,
        ref: TableRef,
        data: pa.RecordBatchReader,
        /,
        *,
        mode: WriteMode,
        merge_keys: list[str] | None = None,
        idempotency: Idempotency | None = None,
        description: str | None = None,
        commit_info: dict[str, str] | None = None,
    ) -> WriteResult:
        result = self.inner.write_table(
            ref,
            data,
            mode=mode,
            merge_keys=merge_keys,
            idempotency=idempotency,
            description=description,
            commit_info=_info(commit_info, mode, merge_keys),
        )
        return self._after(ref, result, mode)

    def write_query(
        self,
        ref: TableRef,
        query: GuardedQuery,
        /,
        *,
        mode: WriteMode = "overwrite",
        description: str | None = None,
        commit_info: dict[str, str] | None = None,
        timeout_seconds: float | None = None,
        merge_keys: list[str] | None = None,
    ) -> WriteResult:
        result = self.inner.write_query(
            ref,
            query,
            mode=mode,
            description=description,
            commit_info=_info(commit_info, mode, merge_keys),
            timeout_seconds=timeout_seconds,
            merge_keys=merge_keys,
        )
        return self._after(ref, result, mode)

    def new_stage(self, ref: TableRef, /) -> Path:
        return self.inner.new_stage(ref)

    def commit_stage(
        self,
        ref: TableRef,
        stage: Path,
        /,
        *,
        mode: WriteMode,
        merge_keys: list[str] | None = None,
        comments: dict[str, str] | None = None,
        idempotency: Idempotency | None = None,
        description: str | None = None,
        commit_info: dict[str, str] | None = None,
    ) -> WriteResult:
        result = self.inner.commit_stage(
            ref,
            stage,
            mode=mode,
            merge_keys=merge_keys,
            comments=comments,
            idempotency=idempotency,
            description=description,
            commit_info=_info(commit_info, mode, merge_keys),
        )
        return self._after(ref, result, mode)

    def discard_stage(self, ref: TableRef, stage: Path, /) -> None:
        self.inner.discard_stage(ref, stage)

    def query(self, query: GuardedQuery, /, *, max_rows: int, max_bytes: int, timeout_seconds: float) -> ArrowResult:
        return self.inner.query(query, max_rows=max_rows, max_bytes=max_bytes, timeout_seconds=timeout_seconds)

    def last_commit_for(self, ref: TableRef, app_id: str, /) -> tuple[int, dict[str, Any]] | None:
        return self.inner.last_commit_for(ref, app_id)

    def table_exists(self, ref: TableRef, /) -> bool:
        return self.inner.table_exists(ref)

    def list_tables(self, catalog: str, /, *, schema: str | None = None) -> list[TableDetail]:
        return self.inner.list_tables(catalog, schema=schema)

    def describe(
        self, ref: TableRef, /, *, version: int | None = None, timestamp: datetime | str | None = None
    ) -> TableDetail:
        return self.inner.describe(ref, version=version, timestamp=timestamp)

    def history(self, ref: TableRef, /, *, limit: int = 20) -> list[HistoryEntry]:
        return self.inner.history(ref, limit=limit)

    def drop_table(self, ref: TableRef, /) -> None:
        self.inner.drop_table(ref)

    def optimize(self, ref: TableRef, /) -> dict[str, Any]:
        return self.inner.optimize(ref)

    def vacuum(self, ref: TableRef, /, *, retention_hours: int = 168) -> list[str]:
        return self.inner.vacuum(ref, retention_hours=retention_hours)

    def put_file(self, catalog: str, schema: str, volume: str, path: str, data: BinaryIO | Path, /) -> VolumeFile:
        return self.inner.put_file(catalog, schema, volume, path, data)

    def list_files(self, catalog: str, schema: str, volume: str, /, *, prefix: str = "") -> list[VolumeFile]:
        return self.inner.list_files(catalog, schema, volume, prefix=prefix)

    def open_file(self, catalog: str, schema: str, volume: str, path: str, /) -> BinaryIO:
        return self.inner.open_file(catalog, schema, volume, path)

    def delete_file(self, catalog: str, schema: str, volume: str, path: str, /) -> None:
        self.inner.delete_file(catalog, schema, volume, path)

    def local_path(self, catalog: str, schema: str, volume: str, path: str, /) -> str | None:
        return self.inner.local_path(catalog, schema, volume, path)

    def ping(self) -> float:
        return self.inner.ping()

    def list_warehouses(self) -> list[WarehouseInfo]:
        return self.inner.list_warehouses()

    def get_warehouse(self, warehouse_id: str, /) -> WarehouseInfo:
        return self.inner.get_warehouse(warehouse_id)

    def start_warehouse(self, warehouse_id: str, /) -> WarehouseInfo:
        return self.inner.start_warehouse(warehouse_id)

    def list_clusters(self) -> list[ClusterInfo]:
        return self.inner.list_clusters()

    def get_cluster(self, cluster_id: str, /) -> ClusterInfo:
        return self.inner.get_cluster(cluster_id)

    def start_cluster(self, cluster_id: str, /) -> ClusterInfo:
        return self.inner.start_cluster(cluster_id)

    def terminate_cluster(self, cluster_id: str, /) -> ClusterInfo:
        return self.inner.terminate_cluster(cluster_id)

    def resize_cluster(
        self, cluster_id: str, /, *, num_workers: int | None = None, autoscale: tuple[int, int] | None = None
    ) -> ClusterInfo:
        return self.inner.resize_cluster(cluster_id, num_workers=num_workers, autoscale=autoscale)

    def put_workspace_notebook(self, path: str, source: str, /, *, language: str) -> None:
        self.inner.put_workspace_notebook(path, source, language=language)

    def get_workspace_notebook(self, path: str, /) -> tuple[str, str]:
        return self.inner.get_workspace_notebook(path)

    def list_workspace(self, folder: str, /) -> list[tuple[str, str]]:
        return self.inner.list_workspace(folder)

    def delete_workspace_object(self, path: str, /, *, recursive: bool = False) -> None:
        self.inner.delete_workspace_object(path, recursive=recursive)

    def interrupt(self) -> None:
        self.inner.interrupt()

    def close(self) -> None:
        self.inner.close()
