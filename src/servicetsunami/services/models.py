"""Result shapes the services return and every front door serialises (MCP structured content,
REST bodies, CLI tables). Pydantic models, so their JSON schema is published as-is."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

# Engine shapes that are part of these results, re-exported for the doors.
from servicetsunami.engines.models import ColumnInfo as ColumnInfo
from servicetsunami.engines.models import HistoryEntry as HistoryEntry


class TableInfo(BaseModel):
    catalog: str
    schema_: str = Field(alias="schema", serialization_alias="schema")
    name: str
    full_name: str
    version: int
    rows: int | None = None
    size_bytes: int | None = None
    updated_at: datetime | None = None
    kind: Literal["table", "view"] = Field("table", description="view: a gold view, computed when queried")

    model_config = {"populate_by_name": True}


class TableDescription(TableInfo):
    columns: list[ColumnInfo]
    partition_columns: list[str] = Field(default_factory=list)
    files: int = 0
    location: str | None = Field(None, description="Where the table's data lives")
    history: list[HistoryEntry] = Field(default_factory=list, description="Most recent first")
    comment: str | None = None
    dataset: dict[str, Any] | None = Field(None, description="Where the rows came from (file, sync)")
    lineage: dict[str, Any] | None = Field(
        None,
        description="How the table was built: upload (file), sync (connection, source table, last run), "
        "transform_to_silver (spec, upstream) or gold (sql, upstream); with last_refresh",
    )
    mirror: dict[str, Any] | None = Field(
        None, description="Copy on the mirror engine (TSUNAMI_MIRROR): status pending | synced | failed, error"
    )


class QueryColumn(BaseModel):
    name: str
    type: str


class QueryResult(BaseModel):
    columns: list[QueryColumn]
    rows: list[list[Any]]
    row_count: int
    truncated: bool = False
    hint: str | None = Field(None, description="How to get the rest when truncated")
    elapsed_ms: float
    sql: str | None = Field(None, description="The statement as run, with names qualified to your catalog")
    cached: bool = Field(
        False, description="Answered from the result cache: the same query already ran over these table versions"
    )


class UploadResult(BaseModel):
    dataset_id: str
    table: str
    mode: Literal["create", "append", "overwrite"]
    rows: int
    columns: list[ColumnInfo]
    version: int
    size_bytes: int | None = None
    landing_path: str
    sync_id: str
    elapsed_ms: float
    sheets: list[str] | None = Field(None, description="Excel sheets ingested")


class HealthCheck(BaseModel):
    ok: bool
    detail: str
    latency_ms: float


class HealthReport(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    engine: str
    checks: dict[str, HealthCheck]


class Warehouse(BaseModel):
    """A SQL warehouse; an embedded engine shows itself as the one warehouse."""

    id: str
    name: str
    state: str = Field(description="RUNNING, STARTING, STOPPED, STOPPING, DELETING or DELETED")
    size: str = Field(description="Cluster size on Databricks (2X-Small ... 4X-Large)")
    engine: str = Field(description="The lakehouse engine the warehouse belongs to")
    detail: dict[str, Any] = Field(default_factory=dict)


class AuditEntry(BaseModel):
    """One entry of the audit log."""

    id: str
    created_at: datetime
    subject: str = Field(description="Who: user:<id>, key:<id> or the service")
    action: str = Field(description="What: a door's call (POST /api/v1/..., mcp:<tool>) or a service action")
    target: str | None = Field(None, description="The object acted on, or the request path")
    door: str | None = Field(None, description="rest or mcp; null for the services' own entries")
    request_id: str | None = None
    outcome: str | None = Field(None, description="ok, or the error code the call ended with")
