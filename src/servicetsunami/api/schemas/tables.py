"""Tables of the caller's catalog and SQL over them."""

from __future__ import annotations

from pydantic import BaseModel, Field

from servicetsunami.services.catalog.lakehouse import LakehouseHealth, LakehouseStatus, LakehouseUsage
from servicetsunami.services.models import HealthReport, QueryResult, TableDescription, TableInfo

__all__ = [
    "HealthReport",
    "LakehouseHealth",
    "LakehouseStatus",
    "LakehouseUsage",
    "QueryCreate",
    "QueryResult",
    "TableDescription",
    "TableInfo",
]


class QueryCreate(BaseModel):
    sql: str = Field(min_length=1, max_length=100_000, description="One read-only Databricks SQL statement")
    max_rows: int | None = Field(None, ge=1, le=1_000_000, description="Lower the row cap for this query")
