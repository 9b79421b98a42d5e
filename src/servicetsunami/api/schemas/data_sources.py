"""Data sources (connections) and their syncs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr

from servicetsunami.services.ingestion.connections import (
    ConnectionCreated,
    ConnectionPublic,
    ConnectionTest,
    SourceKindPublic,
    SourceTable,
)
from servicetsunami.services.ingestion.syncs import SyncPublic, SyncRunPublic

__all__ = [
    "ConnectionTest",
    "DataSourceCreate",
    "DataSourceCreated",
    "DataSourcePublic",
    "SourceKindPublic",
    "SourceTable",
    "SyncCreate",
    "SyncPublic",
    "SyncRunPublic",
]

DataSourcePublic = ConnectionPublic
DataSourceCreated = ConnectionCreated


class DataSourceCreate(BaseModel):
    """A connection of any kind: ``kind`` with its ``config`` and ``secrets`` (GET /data-sources/kinds
    gives each kind's schema). PostgreSQL may also be given by its fields at the top level."""

    name: str = Field(min_length=1, max_length=128, description="Lower-case letters, digits, underscores")
    kind: str = Field("postgres", min_length=1, max_length=64, description="A kind of GET /data-sources/kinds")
    config: dict[str, Any] | None = Field(
        None, description="The kind's settings, secrets excluded (see GET /data-sources/kinds)"
    )
    secrets: dict[str, SecretStr] | None = Field(
        None,
        max_length=16,
        description="The kind's secret settings; stored encrypted, never returned",
        json_schema_extra={"writeOnly": True},
    )
    host: str | None = Field(None, min_length=1, max_length=253, description="postgres without config: host")
    port: int = Field(5432, ge=1, le=65535)
    database: str | None = Field(None, min_length=1, max_length=128, description="postgres without config")
    user: str | None = Field(None, min_length=1, max_length=128, description="postgres without config")
    password: SecretStr | None = Field(
        None, max_length=1024, description="Stored encrypted; never returned", json_schema_extra={"writeOnly": True}
    )
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = "prefer"
    schemas: list[str] | None = Field(None, max_length=100, description="Schemas to offer; all readable if omitted")


class SyncCreate(BaseModel):
    table_name: str = Field(min_length=1, max_length=512, description="Source table, e.g. public.customers")
    sync_mode: Literal["full_refresh", "incremental_append", "incremental_merge"] = "full_refresh"
    cursor_column: str | None = Field(None, max_length=128)
    primary_key: list[str] | None = Field(None, max_length=32)
    target_table: str | None = Field(None, max_length=300, description="Bronze table; the source name if omitted")
    wait_seconds: float = Field(0, ge=0, le=60, description="Wait this long for the run to finish before answering")
