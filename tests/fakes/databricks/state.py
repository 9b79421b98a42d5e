"""What one token's workspace holds: Unity Catalog objects and grants, warehouses, statements, the
COPY INTO load history, and the local engine that keeps the tables and volume files."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from servicetsunami.engines.local.engine import LocalEngine
from tests.fakes.databricks.serving import ServingState
from tests.fakes.databricks.vectors import VectorSearchState


@dataclass
class Warehouse:
    id: str
    name: str
    cluster_size: str
    state: str = "RUNNING"
    polls_until_running: int = 1  # GETs answered STARTING after a start before RUNNING

    def info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "cluster_size": self.cluster_size,
            "state": self.state,
            "auto_stop_mins": 10,
            "min_num_clusters": 1,
            "max_num_clusters": 1,
            "num_clusters": 1 if self.state == "RUNNING" else 0,
            "enable_serverless_compute": False,
            "warehouse_type": "PRO",
            "creator_name": "fake@example.com",
            "jdbc_url": f"jdbc:databricks://fake:443/default;httpPath=/sql/1.0/warehouses/{self.id}",
        }


@dataclass
class Statement:
    id: str
    sql: str
    disposition: str
    format: str
    row_limit: int | None
    byte_limit: int | None
    state: str = "PENDING"
    error: dict[str, str] | None = None
    table: pa.Table | None = None
    truncated: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    interrupt: Any = None  # set by the executor: stops the DuckDB work on cancel


@dataclass
class WorkspaceState:
    token: str
    root: Path
    engine: LocalEngine
    catalogs: dict[str, dict[str, Any]] = field(default_factory=dict)
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)  # "catalog.schema"
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)  # "catalog.schema.volume"
    grants: dict[str, dict[str, set[str]]] = field(default_factory=dict)  # "type/full_name" -> principal -> privs
    warehouses: dict[str, Warehouse] = field(default_factory=dict)
    statements: dict[str, Statement] = field(default_factory=dict)
    loaded_files: dict[str, set[str]] = field(default_factory=dict)  # table -> files COPY INTO loaded
    lock: threading.RLock = field(default_factory=threading.RLock)
    table_locks: dict[str, threading.Lock] = field(default_factory=dict)  # COPY INTO commits one at a time
    jobs: dict[str, Any] = field(default_factory=dict)  # jobs and runs: jobs.py
    compute: Any = None  # clusters and the workspace tree (notebooks, files): compute.py, workspace.py
    contexts: Any = None  # execution contexts and their commands (Command Execution API 1.2): commands.py
    serving: ServingState = field(default_factory=ServingState)  # Model Serving endpoints (serving.py)
    vector_search: VectorSearchState = field(default_factory=VectorSearchState)  # vectors.py

    def table_lock(self, key: str) -> threading.Lock:
        with self.lock:
            return self.table_locks.setdefault(key, threading.Lock())

    @classmethod
    def create(cls, token: str, root: Path) -> WorkspaceState:
        folder = root / uuid.uuid4().hex[:12]
        state = cls(token=token, root=folder, engine=LocalEngine(folder / "lakehouse", threads=2))
        state.warehouses["wh-small"] = Warehouse("wh-small", "Starter Warehouse", "2X-Small")
        return state

    def volume_dir(self, catalog: str, schema: str, volume: str) -> Path:
        return self.engine._layout.volume_dir(catalog, schema, volume)
