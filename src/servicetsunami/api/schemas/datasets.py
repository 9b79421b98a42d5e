"""Datasets (uploaded files as bronze tables)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from servicetsunami.services.catalog.datasets import DatasetDeleted, DatasetDetail, DatasetPublic
from servicetsunami.services.models import UploadResult

__all__ = ["DatasetCreate", "DatasetDeleted", "DatasetDetail", "DatasetPublic", "DatasetQuery", "UploadResult"]


class DatasetCreate(BaseModel):
    """The multipart form of POST /datasets (documented here; parsed as a stream)."""

    file: bytes = Field(description="The file: CSV/TSV, Excel (.xlsx), Parquet, JSON or NDJSON")
    name: str | None = Field(None, description="Bronze table name; derived from the file name if omitted")
    mode: Literal["create", "append", "overwrite"] = "create"
    format: str | None = Field(
        None, description="csv, tsv, xlsx, parquet, json or ndjson; from the extension if omitted"
    )
    delimiter: str | None = None
    header: bool | None = None
    encoding: str | None = None
    sheet: str | None = None


class DatasetQuery(BaseModel):
    sql: str | None = Field(
        None, max_length=100_000, description="Read-only SQL; without it, the dataset's rows are returned"
    )
    max_rows: int | None = Field(None, ge=1, le=1_000_000, description="Lower the row cap for this query")
