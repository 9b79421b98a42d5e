"""Shapes the engines return that the services pass on unchanged (a table's columns, its history).

Pydantic models, so the front doors publish their JSON schema as-is; they live with the engines
because the engines build them, and the services import them from here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class ColumnInfo(BaseModel):
    name: str
    type: str = Field(description="Databricks SQL type name, e.g. BIGINT, STRING, DECIMAL(15,2)")
    nullable: bool = True
    comment: str | None = Field(None, description="Original source name or a description")


class HistoryEntry(BaseModel):
    version: int
    timestamp: datetime | None
    operation: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
