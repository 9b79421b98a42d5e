"""The Databricks engine: tenant catalogs in Unity Catalog, Delta tables written from Parquet files in
the tenant's landing volume and read through a SQL warehouse (Statement Execution API, Arrow results).

Table names in statements always come qualified (``catalog.schema.table``) from the SQL layer or from
:func:`~servicetsunami.engines.databricks.writes.qualified`; nothing is sent as ``USE CATALOG``, and
each request carries exactly one statement.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.parquet as pq

from servicetsunami.engines.base import (
    ArrowResult,
    Capabilities,
    Engine,
    Idempotency,
    TableDetail,
    WarehouseInfo,
    WriteMode,
    WriteResult,
)
from servicetsunami.engines.databricks import writes
from servicetsunami.engines.databricks.commands import DatabricksCommands
from servicetsunami.engines.databricks.compute import DatabricksClusters
from servicetsunami.engines.databricks.notebooks import DatabricksNotebooks
from servicetsunami.engines.databricks.serving import ModelServing
from servicetsunami.engines.databricks.types import arrow_schema
from servicetsunami.engines.databricks.vectorsearch import VectorSearch
from servicetsunami.engines.databricks.volumes import DatabricksVolumes
from servicetsunami.engines.databricks.workspace import Workspace
from servicetsunami.engines.local import drift
from servicetsunami.engines.local.writes import parse_timestamp
from servicetsunami.engines.models import ColumnInfo, HistoryEntry
from servicetsunami.engines.types import sql_type
from servicetsunami.errors import Conflict, InvalidInput, NotFound
from servicetsunami.settings import DatabricksSettings
from servicetsunami.sql import GuardedQuery
from servicetsunami.tenancy import LANDING_VOLUME, LAYERS, TableRef

logger = logging.getLogger(__name__)

# Privileges the tenant's principal gets on its own catalog (and nothing anywhere else).
_TENANT_PRIVILEGES = ("USE_CATALOG", "USE_SCHEMA", "SELECT", "MODIFY", "CREATE_TABLE", "READ_VOLUME", "WRITE_VOLUME")
_DDL_TIMEOUT = 600.0


@dataclass(frozen=True, slots=True)
class _Plan:
    exists: bool
    current: pa.Schema | None
    widen: dict[str, pa.DataType]
    token: str


class DatabricksEngine(DatabricksVolumes, DatabricksClusters, DatabricksCommands, DatabricksNotebooks, Engine):
    kind: ClassVar[str] = "databricks"
    # Column comments would need one ALTER commit per column after the load, and appending a query's
    # result an INSERT ... SELECT with its own schema evolution; neither is done, so both are declared.
    capabilities: ClassVar[Capabilities] = Capabilities(
        column_comments=False, staged_parquet=True, query_append=False, clusters=True, workspace_notebooks=True
    )

    def __init__(
        self,
        settings: DatabricksSettings,
        *,
        workspace: Workspace | None = None,
        merge_timeout_seconds: float = _DDL_TIMEOUT,
    ) -> None:
        self.settings = settings
        self._merge_timeout = merge_timeout_seconds
        self.ws = workspace or Workspace(settings)
        self.serving = ModelServing(self.ws)  # Model Serving endpoints (agents' Foundation Models)
        self.vector_search = VectorSearch(self.ws)  # Vector Search endpoints and indexes
        self._ensured: set[str] = set()

    # -- catalogs -----------------------------------------------------------------------------

    def ensure_catalog(self, catalog: str, /) -> None:
        if catalog in self._ensured:
            return
        from databricks.sdk.errors import NotFound as SdkNotFound
        from databricks.sdk.service.catalog import PermissionsChange, Privilege, VolumeType

        c = self.ws.client
        with self.ws.translated(f"creating catalog {catalog}"):
            try:
                c.catalogs.get(catalog)
            except SdkNotFound:
                root = (
                    f"{self.settings.storage_location.rstrip('/')}/{catalog}"
                    if self.settings.storage_location
                    else None
                )
                _created(lambda: c.catalogs.create(catalog, comment="ServiceTsunami tenant catalog", storage_root=root))
            for schema in LAYERS:
                _created(lambda schema=schema: c.schemas.create(schema, catalog))
            _created(lambda: c.volumes.create(catalog, "bronze", LANDING_VOLUME, VolumeType.MANAGED))
            if self.settings.tenant_principal:
                principal = self.settings.tenant_principal.replace("{catalog}", catalog)
                c.grants.update(
                    "catalog",
                    catalog,
                    changes=[PermissionsChange(principal=principal, add=[Privilege(p) for p in _TENANT_PRIVILEGES])],
                )
        self._ensured.add(catalog)

    def catalog_exists(self, catalog: str, /) -> bool:
        """The catalog, its layer schemas and the landing volume all exist in Unity Catalog."""
        from databricks.sdk.errors import NotFound as SdkNotFound

        c = self.ws.client
        with self.ws.translated(f"looking up catalog {catalog}"):
            try:
                c.catalogs.get(catalog)
                for schema in LAYERS:
                    c.schemas.get(f"{catalog}.{schema}")
                c.volumes.read(f"{catalog}.bronze.{LANDING_VOLUME}")
            except SdkNotFound:
                return False
        return True

    # -- writes -------------------------------------------------------------------------------

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
        plan = self._plan(ref, data.schema, mode, merge_keys, idempotency)
        if isinstance(plan, WriteResult):
            return plan
        staged = writes.stage_stream(self.ws, ref, data, token=plan.token, file_rows=self.settings.file_rows)
        return self._load(ref, plan, staged, mode, merge_keys, idempotency, description, commit_info)

    def new_stage(self, ref: TableRef, /) -> Path:
        return Path(tempfile.mkdtemp(prefix="tsunami-databricks-stage-"))

    def discard_stage(self, ref: TableRef, stage: Path, /) -> None:
        shutil.rmtree(stage, ignore_errors=True)

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
        """Upload the Parquet files a native writer (DuckDB) put in ``stage`` and load them like
        :meth:`write_table`. Column comments are not kept (see ``capabilities``)."""
        try:
            files = sorted(stage.rglob("*.parquet"))
            if not files:
                raise InvalidInput("there are no rows to write")
            schema = pa.unify_schemas([pq.read_schema(f) for f in files], promote_options="permissive")
            plan = self._plan(ref, schema, mode, merge_keys, idempotency)
            if isinstance(plan, WriteResult):
                return plan
            staged = writes.stage_files(self.ws, ref, files, schema, token=plan.token)
            return self._load(ref, plan, staged, mode, merge_keys, idempotency, description, commit_info)
        finally:
            self.discard_stage(ref, stage)

    def _plan(
        self,
        ref: TableRef,
        incoming: pa.Schema,
        mode: WriteMode,
        merge_keys: list[str] | None,
        idempotency: Idempotency | None,
    ) -> _Plan | WriteResult:
        """Checks before anything is uploaded: the mode, an already committed token, type changes."""
        if mode == "merge" and not merge_keys:
            raise InvalidInput("merge needs at least one key column")
        exists = self.table_exists(ref)
        if mode == "create" and exists:
            raise Conflict(f"table {ref.schema}.{ref.name} already exists; use mode 'append' or 'overwrite'")
        if exists and idempotency is not None:
            record = writes.read_ledger(self.ws, ref, idempotency.app_id)
            if record is not None and int(record["sequence"]) >= idempotency.sequence:
                return WriteResult(ref, self._version(ref), 0, skipped=True)
        widen: dict[str, pa.DataType] = {}
        current: pa.Schema | None = None
        if exists and mode in ("append", "merge"):
            current = self._schema(ref)
            widen = drift.columns_to_widen(current, incoming, table=f"{ref.schema}.{ref.name}")
        return _Plan(exists, current, widen, writes.token_for(idempotency))

    def _load(
        self,
        ref: TableRef,
        plan: _Plan,
        staged: writes.Staged,
        mode: WriteMode,
        merge_keys: list[str] | None,
        idempotency: Idempotency | None,
        description: str | None,
        commit_info: dict[str, str] | None,
    ) -> WriteResult:
        try:
            if plan.widen and plan.current is not None:
                logger.info("widening %s of %s", ", ".join(f"{k} to {v}" for k, v in plan.widen.items()), ref)
                self._run(writes.rewrite_widened(ref, plan.current, {k: sql_type(v) for k, v in plan.widen.items()}))
            if not plan.exists or mode in ("overwrite", "create"):
                self._run(writes.create_as_select(ref, staged, replace=mode == "overwrite", description=description))
            elif mode == "append":
                self._run(writes.copy_into(ref, staged))
            else:
                self._merge(ref, staged, plan.token, merge_keys or [])
            if idempotency is not None:
                writes.write_ledger(self.ws, ref, idempotency, commit_info)
        finally:
            writes.remove_files(self.ws, staged.directory, staged.names)
        return WriteResult(ref, self._version(ref), staged.rows)

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
        """``CREATE [OR REPLACE] TABLE ... AS <select>`` on the warehouse: one atomic statement, so a
        select that fails part-way leaves the table as it was. Modes ``create``, ``overwrite`` and
        ``merge`` (the select into a stage table, then one MERGE; see ``capabilities``)."""
        self._check_query_target(ref, query, mode, merge_keys)
        if mode == "merge" and merge_keys and self.table_exists(ref):
            return self._merge_query(ref, query, merge_keys, timeout_seconds or _DDL_TIMEOUT)
        if mode == "merge":
            mode = "create"  # nothing to merge into yet
        if mode == "create" and self.table_exists(ref):
            raise Conflict(f"table {ref.schema}.{ref.name} already exists; use mode 'overwrite'")
        head = "CREATE OR REPLACE TABLE" if mode == "overwrite" else "CREATE TABLE"
        comment = f" COMMENT {writes.literal(description)}" if description else ""
        # A plain CREATE TABLE sent twice would answer "already exists" for a table it made itself.
        result = self.ws.rows(
            f"{head} {writes.qualified(ref)}{comment} AS {query.sql}",
            timeout=timeout_seconds or _DDL_TIMEOUT,
            idempotent=mode == "overwrite",
        )
        counts = result.dicts()
        rows = int(counts[0].get("num_inserted_rows") or 0) if counts else 0
        return WriteResult(ref, self._version(ref), rows)

    def _merge_query(self, ref: TableRef, query: GuardedQuery, keys: list[str], timeout: float) -> WriteResult:
        stage = writes.stage_table(ref, uuid.uuid4().hex)
        self.ws.rows(f"CREATE OR REPLACE TABLE {writes.qualified(stage)} AS {query.sql}", timeout=timeout)
        try:
            columns = self._schema(stage).names
            result = self.ws.rows(
                writes.merge_into(ref, stage, keys, columns), timeout=timeout
            )  # an upsert: safe to repeat
        finally:
            with contextlib.suppress(Exception):  # a leftover stage table is hidden from list_tables
                self._run(f"DROP TABLE IF EXISTS {writes.qualified(stage)}")
        counts = result.dicts()
        rows = int(counts[0].get("num_affected_rows") or 0) if counts else 0
        return WriteResult(ref, self._version(ref), rows)

    def _merge(self, ref: TableRef, staged: writes.Staged, token: str, keys: list[str]) -> None:
        stage = writes.stage_table(ref, token)
        statement = writes.merge_into(ref, stage, keys, staged.schema.names)
        self._run(writes.create_as_select(stage, staged, replace=True, description=None))
        try:
            self.ws.rows(statement, timeout=self._merge_timeout)  # canceled on the warehouse past it
        finally:
            with contextlib.suppress(Exception):  # a leftover stage table is hidden from list_tables
                self._run(f"DROP TABLE IF EXISTS {writes.qualified(stage)}")

    def _run(self, sql: str) -> None:
        self.ws.rows(sql, timeout=_DDL_TIMEOUT)

    # -- reads --------------------------------------------------------------------------------

    def query(self, query: GuardedQuery, /, *, max_rows: int, max_bytes: int, timeout_seconds: float) -> ArrowResult:
        if query.kind not in ("select", "explain"):
            raise InvalidInput(f"the engine runs SELECT and EXPLAIN statements, not {query.kind}")
        started = time.perf_counter()
        table, truncated = self.ws.arrow(query.sql, timeout=timeout_seconds, row_limit=max_rows, byte_limit=max_bytes)
        if table.num_rows > max_rows:
            table, truncated = table.slice(0, max_rows), True
        if table.nbytes > max_bytes and table.num_rows > 1:
            keep = max(1, int(table.num_rows * max_bytes / table.nbytes))
            table, truncated = table.slice(0, keep), True
        return ArrowResult(table, truncated, (time.perf_counter() - started) * 1000, query.sql)

    # -- metadata -----------------------------------------------------------------------------

    def last_commit_for(self, ref: TableRef, app_id: str, /) -> tuple[int, dict[str, Any]] | None:
        if not self.table_exists(ref):
            return None
        record = writes.read_ledger(self.ws, ref, app_id)
        if record is None:
            return None
        info = dict(record.get("commit_info") or {})
        info |= {"tsunami.app_id": app_id, "tsunami.sequence": str(record["sequence"])}
        return int(record["sequence"]), info

    def table_exists(self, ref: TableRef, /) -> bool:
        found = self.ws.call(lambda: self.ws.client.tables.exists(str(ref)), action=f"looking up {ref}")
        return bool(found.table_exists)

    def list_tables(self, catalog: str, /, *, schema: str | None = None) -> list[TableDetail]:
        schemas = [schema] if schema else list(LAYERS)
        out: list[TableDetail] = []
        for s in schemas:
            with self.ws.translated(f"listing tables of {catalog}.{s}"):
                listed = list(self.ws.client.tables.list(catalog, s, omit_columns=True))
            for info in sorted(listed, key=lambda t: str(t.name)):
                name = str(info.name)
                if name.startswith(writes.STAGE_TABLE_PREFIX):
                    continue
                with contextlib.suppress(NotFound):  # dropped between the listing and the describe
                    out.append(self.describe(TableRef(catalog, s, name)))
        return out

    def describe(
        self, ref: TableRef, /, *, version: int | None = None, timestamp: datetime | str | None = None
    ) -> TableDetail:
        history = self.history(ref, limit=1000 if (version is not None or timestamp is not None) else 1)
        latest = history[0].version
        at = latest
        if version is not None:
            if not any(h.version == version for h in history):
                raise NotFound(f"table {ref.schema}.{ref.name} has no version {version} (versions 0 to {latest})")
            at = version
        elif timestamp is not None:
            when = parse_timestamp(timestamp)
            older = [h for h in history if h.timestamp is not None and h.timestamp <= when]
            if not older:
                raise NotFound(f"table {ref.schema}.{ref.name} did not exist yet at {when.isoformat()}")
            at = older[0].version
        name = writes.qualified(ref)
        travel = f" VERSION AS OF {at}" if at != latest else ""
        count = self.ws.rows(f"SELECT count(*) AS n FROM {name}{travel}").data[0][0]
        if at != latest:  # DESCRIBE DETAIL shows only the current version
            schema = arrow_schema(self.ws.rows(f"SELECT * FROM {name}{travel} LIMIT 0").columns)
            return TableDetail(
                ref=ref,
                version=at,
                columns=[ColumnInfo(name=f.name, type=sql_type(f.type)) for f in schema],
                rows=int(count or 0),
                size_bytes=None,
                files=0,
                partition_columns=[],
                updated_at=next((h.timestamp for h in history if h.version == at), None),
                location=str(ref),
            )
        columns, info = _extended(self.ws.rows(f"DESCRIBE TABLE EXTENDED {name}").data)
        detail = self.ws.rows(f"DESCRIBE DETAIL {name}").dicts()[0]
        return TableDetail(
            ref=ref,
            version=latest,
            columns=columns,
            rows=int(count or 0),
            size_bytes=int(detail.get("sizeInBytes") or 0),
            files=int(detail.get("numFiles") or 0),
            partition_columns=list(json.loads(detail.get("partitionColumns") or "[]")),
            updated_at=history[0].timestamp,
            location=str(detail.get("location") or info.get("Location") or ref),
            comment=info.get("Comment") or detail.get("description") or None,
            properties=dict(json.loads(detail.get("properties") or "{}")),
        )

    def history(self, ref: TableRef, /, *, limit: int = 20) -> list[HistoryEntry]:
        rows = self.ws.rows(f"DESCRIBE HISTORY {writes.qualified(ref)} LIMIT {int(limit)}").dicts()
        return [
            HistoryEntry(
                version=int(r["version"] or 0),
                timestamp=_timestamp(r.get("timestamp")),
                operation=str(r.get("operation") or ""),
                parameters=json.loads(r.get("operationParameters") or "{}"),
                metrics=json.loads(r.get("operationMetrics") or "{}"),
            )
            for r in rows
        ]

    def _version(self, ref: TableRef) -> int:
        return self.history(ref, limit=1)[0].version

    def _schema(self, ref: TableRef) -> pa.Schema:
        return arrow_schema(self.ws.rows(f"SELECT * FROM {writes.qualified(ref)} LIMIT 0").columns)

    def drop_table(self, ref: TableRef, /) -> None:
        self.ws.call(lambda: self.ws.client.tables.delete(str(ref)), action=f"dropping {ref.schema}.{ref.name}")
        writes.drop_ledger(self.ws, ref)

    def optimize(self, ref: TableRef, /) -> dict[str, Any]:
        result = self.ws.rows(f"OPTIMIZE {writes.qualified(ref)}", timeout=_DDL_TIMEOUT).dicts()
        metrics = result[0].get("metrics") if result else None
        return dict(json.loads(metrics)) if metrics else {}

    def vacuum(self, ref: TableRef, /, *, retention_hours: int = 168) -> list[str]:
        sql = f"VACUUM {writes.qualified(ref)} RETAIN {int(retention_hours)} HOURS"
        return [str(r[0]) for r in self.ws.rows(sql, timeout=_DDL_TIMEOUT).data if r and r[0]]

    # -- health -------------------------------------------------------------------------------

    def ping(self) -> float:
        started = time.perf_counter()
        self.ws.call(self.ws.client.current_user.me, action="asking the workspace who we are")
        return (time.perf_counter() - started) * 1000

    def close(self) -> None:
        self._ensured.clear()

    # -- warehouses ---------------------------------------------------------------------------

    def list_warehouses(self) -> list[WarehouseInfo]:
        return [_warehouse(w) for w in self.ws.list_warehouses()]

    def get_warehouse(self, warehouse_id: str, /) -> WarehouseInfo:
        return _warehouse(self.ws.get_warehouse(warehouse_id))

    def start_warehouse(self, warehouse_id: str, /) -> WarehouseInfo:
        return _warehouse(self.ws.start_warehouse(warehouse_id, wait=False))


def _warehouse(info: Any) -> WarehouseInfo:
    detail = {
        k: v
        for k, v in {
            "auto_stop_mins": info.auto_stop_mins,
            "num_clusters": info.num_clusters,
            "max_num_clusters": info.max_num_clusters,
            "serverless": info.enable_serverless_compute,
            "creator": info.creator_name,
        }.items()
        if v is not None
    }
    return WarehouseInfo(
        id=str(info.id),
        name=str(info.name or info.id),
        state=info.state.value if info.state is not None else "UNKNOWN",
        size=str(info.cluster_size or ""),
        kind="databricks",
        detail=detail,
    )


def _created(create: Any) -> None:
    """Run a UC create call; an object that already exists is what we wanted."""
    from databricks.sdk.errors import ResourceConflict  # AlreadyExists, and UC's *_ALREADY_EXISTS codes (409)

    with contextlib.suppress(ResourceConflict):
        create()


def _extended(rows: list[list[str | None]]) -> tuple[list[ColumnInfo], dict[str, str]]:
    """Columns and the ``# Detailed Table Information`` section of ``DESCRIBE TABLE EXTENDED``."""
    columns: list[ColumnInfo] = []
    info: dict[str, str] = {}
    section = "columns"
    for row in rows:
        name, kind, comment = [*row, None, None, None][:3]
        name = (name or "").strip()
        if name.startswith("#"):
            section = name
            continue
        if not name:
            section = "" if section == "columns" else section
            continue
        if section == "columns":
            columns.append(ColumnInfo(name=name, type=str(kind or "").upper(), comment=comment or None))
        elif section == "# Detailed Table Information":
            info[name] = kind or ""
    return columns, info


def _timestamp(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
