"""Vector index tools: ``create_vector_index``, ``sync_vector_index``, ``search_vectors``,
``describe_vector_index``, ``list_vector_indexes``, ``delete_vector_index``. A build or sync waits
(with progress) up to ``wait_seconds`` and answers with the index and its run id either way.
Analysts may search and describe; building and deleting need the write permission."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastmcp import FastMCP
from fastmcp.server.context import Context
from fastmcp.tools.base import ToolResult
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from servicetsunami.mcp.auth import Caller
from servicetsunami.mcp.errors import call_service
from servicetsunami.mcp.results import output_schema, tool_result
from servicetsunami.services.container import Services
from servicetsunami.services.runs import service as runs
from servicetsunami.services.runs.model import RunPublic
from servicetsunami.services.vectors import indexes
from servicetsunami.services.vectors.indexes import VectorIndexList, VectorIndexPublic, VectorIndexRun
from servicetsunami.services.vectors.search import search_vectors as search_service
from servicetsunami.tenancy import Principal

_READ = ToolAnnotations(title="Vector indexes", read_only_hint=True, open_world_hint=False)
_BUILD = ToolAnnotations(
    title="Build a vector index",
    read_only_hint=False,
    destructive_hint=False,
    idempotent_hint=False,
    open_world_hint=False,
)
_SYNC = ToolAnnotations(
    title="Sync a vector index",
    read_only_hint=False,
    destructive_hint=False,
    idempotent_hint=True,
    open_world_hint=False,
)
_DELETE = ToolAnnotations(
    title="Delete a vector index",
    read_only_hint=False,
    destructive_hint=True,
    idempotent_hint=True,
    open_world_hint=False,
)
MAX_WAIT_SECONDS = 120.0

IndexRef = Annotated[str, Field(description="The index's name (docs_idx or gold.docs_idx) or its id")]
WaitSeconds = Annotated[float, Field(ge=0, le=MAX_WAIT_SECONDS, description="Wait (with progress) at most this long")]


class VectorSearchResult(BaseModel):
    columns: list[str]
    rows: list[list[Any]] = Field(description="Best first; personal data masked as in query results")
    scores: list[float] = Field(description="Per row: 1 - cosine distance (ann) or the fused rank score (hybrid)")
    truncated: bool = Field(description="k was cut to the cap")
    method: str = Field(description="exact, hnsw, exact+bm25 or hnsw+bm25")
    hint: str | None = None
    elapsed_ms: float


async def _waited(
    services: Services, principal: Principal, made: VectorIndexRun, ctx: Context, wait_seconds: float
) -> VectorIndexRun:
    async def report(run: RunPublic) -> None:
        p = run.progress
        await ctx.report_progress(float(p.done or 0), p.total, p.message or run.state)

    if wait_seconds > 0:
        await runs.await_run(services, principal, made.run_id, timeout=wait_seconds, on_progress=report)
    facts = await call_service(indexes.describe_vector_index, services, principal, made.index.index_id)
    return VectorIndexRun(index=facts, run_id=made.run_id)


def register(server: FastMCP, services: Services, caller: Caller) -> None:
    @server.tool(tags={"write"}, annotations=_BUILD, output_schema=output_schema(VectorIndexRun))
    async def create_vector_index(
        name: Annotated[str, Field(description="Index name; its table is gold.<name>")],
        source_table: Annotated[str, Field(description="The table to index (name, schema.name; default schema gold)")],
        primary_key: Annotated[str, Field(description="A column unique per row")],
        ctx: Context,
        text_column: Annotated[str | None, Field(description="The text to embed (and to match with BM25)")] = None,
        embedding_model: Annotated[
            str | None, Field(description="wordllama (offline, default), openai, or databricks:<serving endpoint>")
        ] = None,
        embedding_column: Annotated[
            str | None, Field(description="Instead of a model: a column already holding the vectors")
        ] = None,
        columns_to_sync: Annotated[list[str] | None, Field(description="More columns to return and filter on")] = None,
        sync_mode: Annotated[
            Literal["triggered", "continuous"],
            Field(description="triggered: sync when asked; continuous: follow the source table's versions"),
        ] = "triggered",
        wait_seconds: WaitSeconds = 60,
    ) -> ToolResult:
        """Build a vector index of a table (a run): embeddings of its text column, searchable at once when built."""
        principal = caller.principal()
        made = await call_service(
            indexes.create_vector_index,
            services,
            principal,
            name,
            source_table=source_table,
            primary_key=primary_key,
            text_column=text_column,
            embedding_model=embedding_model,
            embedding_column=embedding_column,
            columns_to_sync=columns_to_sync,
            sync_mode=sync_mode,
        )
        return tool_result(await _waited(services, principal, made, ctx, wait_seconds))

    @server.tool(tags={"write"}, annotations=_SYNC, output_schema=output_schema(VectorIndexRun))
    async def sync_vector_index(
        index: IndexRef,
        ctx: Context,
        full: Annotated[bool, Field(description="Re-embed every row, not only added and changed ones")] = False,
        wait_seconds: WaitSeconds = 60,
    ) -> ToolResult:
        """Bring an index up to its source table: embed added and changed rows, drop deleted ones."""
        principal = caller.principal()
        made = await call_service(indexes.sync_vector_index, services, principal, index, full=full)
        return tool_result(await _waited(services, principal, made, ctx, wait_seconds))

    @server.tool(tags={"read"}, annotations=_READ, output_schema=output_schema(VectorSearchResult))
    async def search_vectors(
        index: IndexRef,
        query_text: Annotated[str | None, Field(description="What to look for, in words")] = None,
        query_vector: Annotated[list[float] | None, Field(description="Or a vector of the index's length")] = None,
        k: Annotated[int, Field(ge=1, le=1000, description="How many rows (cut to the server's cap)")] = 10,
        filters: Annotated[
            dict[str, Any] | None,
            Field(description='Like Databricks: {"topic": "billing", "year >=": 2024, "id": [1, 2]}'),
        ] = None,
        query_type: Annotated[
            Literal["ann", "hybrid"], Field(description="ann: vectors only; hybrid: vectors and keywords (BM25)")
        ] = "ann",
        columns: Annotated[list[str] | None, Field(description="Columns to return; default all of the index's")] = None,
    ) -> ToolResult:
        """Rows of a vector index nearest a text or vector, best first, with scores."""
        found = await call_service(
            search_service,
            services,
            caller.principal(),
            index,
            query_text=query_text,
            query_vector=query_vector,
            k=k,
            filters=filters,
            query_type=query_type,
            columns=columns,
        )
        return tool_result(VectorSearchResult(**found))

    @server.tool(tags={"read"}, annotations=_READ, output_schema=output_schema(VectorIndexPublic))
    async def describe_vector_index(index: IndexRef) -> ToolResult:
        """An index's source, columns, model, state, row count and what its last sync did."""
        return tool_result(await call_service(indexes.describe_vector_index, services, caller.principal(), index))

    @server.tool(tags={"read"}, annotations=_READ, output_schema=output_schema(VectorIndexList))
    async def list_vector_indexes(
        limit: Annotated[int, Field(ge=1, le=1000)] = 100,
        cursor: Annotated[str | None, Field(description="next_cursor of the previous page")] = None,
    ) -> ToolResult:
        """The tenant's vector indexes, by name."""
        return tool_result(
            await call_service(indexes.list_vector_indexes, services, caller.principal(), limit=limit, after=cursor)
        )

    @server.tool(tags={"write"}, annotations=_DELETE, output_schema=output_schema(VectorIndexPublic))
    async def delete_vector_index(index: IndexRef) -> ToolResult:
        """Delete a vector index: its table, its graph and its definition (the source table stays)."""
        return tool_result(await call_service(indexes.delete_vector_index, services, caller.principal(), index))
