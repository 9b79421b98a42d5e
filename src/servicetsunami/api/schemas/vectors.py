"""Request bodies of /vector-indexes, and the search answer (the rest are the service's own shapes)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class VectorIndexCreate(BaseModel):
    name: str = Field(max_length=300, description="Index name; its table is gold.<name>")
    source_table: str = Field(max_length=400, description="The table to index (default schema gold)")
    primary_key: str = Field(max_length=128)
    text_column: str | None = Field(None, max_length=128, description="The text to embed and match")
    embedding_model: str | None = Field(
        None, max_length=300, description="wordllama (offline, default), openai, or databricks:<serving endpoint>"
    )
    embedding_column: str | None = Field(None, max_length=128, description="Instead: a column holding vectors")
    columns_to_sync: list[str] | None = Field(None, max_length=200)
    sync_mode: Literal["triggered", "continuous"] = "triggered"
    wait_seconds: float = Field(0, ge=0, le=120, description="Wait for the build at most this long")


class VectorIndexSync(BaseModel):
    full: bool = Field(False, description="Re-embed every row")
    wait_seconds: float = Field(0, ge=0, le=120)


class VectorSearch(BaseModel):
    query_text: str | None = Field(None, max_length=100_000)
    query_vector: list[float] | None = Field(None, max_length=65_536)
    k: int = Field(10, ge=1, le=1000, description="How many rows (cut to the server's cap)")
    filters: dict[str, Any] | None = Field(None, description='Like Databricks: {"topic": "x", "year >=": 2024}')
    query_type: Literal["ann", "hybrid"] = "ann"
    columns: list[str] | None = Field(None, max_length=200)


class VectorSearchPublic(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
    scores: list[float]
    truncated: bool
    method: str
    hint: str | None = None
    elapsed_ms: float
