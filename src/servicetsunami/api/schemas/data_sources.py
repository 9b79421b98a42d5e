"""Data sources (connections) and their syncs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr

from servicetsunami.services.ingestion.connections import (
    ConnectionCreated,
    ConnectionPublic,
    ConnectionTest,
    SourceTable,
)
from servicetsunami.services.ingestion.syncs import SyncPublic, SyncRunPublic

__all__ = [
    "ConnectionTest",
    "DataSourceCreate",
    "DataSourceCreated",
    "DataSourcePublic",
    "SourceTable",
    "SyncCreate",
    "SyncPublic",
    "SyncRunPublic",
]

DataSourcePublic = ConnectionPublic
DataSourceCreated = ConnectionCreated


class DataSourceCreate(BaseModel):
    name: str = Field(min_length=1, max_length=128, description="Lower-case letters, digits, underscores")
    kind: Literal["postgres"] = "postgres"
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(5432, ge=1, le=65535)
    database: str = Field(min_length=1, max_length=128)
    user: str = Field(min_length=1, max_length=128)
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
