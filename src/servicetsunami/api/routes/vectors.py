"""Vector indexes: create (a build run, 202), list, describe, sync (a run, 202), search, delete.

A build or sync answers with the index and its run id after an optional bounded wait; follow the
run at ``GET /runs/{run_id}``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from servicetsunami.api.deps import PrincipalDep, ServicesDep
from servicetsunami.api.schemas.common import COMMON_ERRORS, problem_responses
from servicetsunami.api.schemas.vectors import VectorIndexCreate, VectorIndexSync, VectorSearch, VectorSearchPublic
from servicetsunami.services.runs import service as runs
from servicetsunami.services.vectors import indexes
from servicetsunami.services.vectors.indexes import VectorIndexList, VectorIndexPublic, VectorIndexRun
from servicetsunami.services.vectors.search import search_vectors as search_service

router = APIRouter(prefix="/vector-indexes", tags=["vector-indexes"])
SEARCH_ERRORS = {**COMMON_ERRORS, **problem_responses(501)}


def _waited(services: ServicesDep, principal: PrincipalDep, made: VectorIndexRun, wait: float) -> VectorIndexRun:
    if wait > 0:
        runs.wait_for_run(services, principal, made.run_id, timeout=wait)
    return VectorIndexRun(
        index=indexes.describe_vector_index(services, principal, made.index.index_id), run_id=made.run_id
    )


@router.post(
    "",
    operation_id="create_vector_index",
    status_code=202,
    response_model=VectorIndexRun,
    responses=COMMON_ERRORS,
)
async def create_vector_index(
    body: VectorIndexCreate, services: ServicesDep, principal: PrincipalDep
) -> VectorIndexRun:
    """Build a vector index of a table; the build is a run (its id in the answer)."""

    def create() -> VectorIndexRun:
        made = indexes.create_vector_index(
            services,
            principal,
            body.name,
            source_table=body.source_table,
            primary_key=body.primary_key,
            text_column=body.text_column,
            embedding_model=body.embedding_model,
            embedding_column=body.embedding_column,
            columns_to_sync=body.columns_to_sync,
            sync_mode=body.sync_mode,
        )
        return _waited(services, principal, made, body.wait_seconds)

    return await run_in_threadpool(create)


@router.get("", operation_id="list_vector_indexes", response_model=VectorIndexList, responses=COMMON_ERRORS)
async def list_vector_indexes(
    services: ServicesDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=300, description="next_cursor of the previous page")] = None,
) -> VectorIndexList:
    """The tenant's vector indexes, by name."""
    return await run_in_threadpool(lambda: indexes.list_vector_indexes(services, principal, limit=limit, after=cursor))


@router.get("/{index}", operation_id="describe_vector_index", response_model=VectorIndexPublic, responses=COMMON_ERRORS)
async def describe_vector_index(index: str, services: ServicesDep, principal: PrincipalDep) -> VectorIndexPublic:
    """An index (by name or id): source, columns, model, state, rows, its last sync."""
    return await run_in_threadpool(indexes.describe_vector_index, services, principal, index)


@router.post(
    "/{index}/sync",
    operation_id="sync_vector_index",
    status_code=202,
    response_model=VectorIndexRun,
    responses=COMMON_ERRORS,
)
async def sync_vector_index(
    index: str, services: ServicesDep, principal: PrincipalDep, body: VectorIndexSync | None = None
) -> VectorIndexRun:
    """Bring the index up to its source table (a run): added and changed rows embedded, deleted ones dropped."""
    options = body or VectorIndexSync()

    def sync() -> VectorIndexRun:
        made = indexes.sync_vector_index(services, principal, index, full=options.full)
        return _waited(services, principal, made, options.wait_seconds)

    return await run_in_threadpool(sync)


@router.post(
    "/{index}/query", operation_id="search_vectors", response_model=VectorSearchPublic, responses=SEARCH_ERRORS
)
async def search_vectors(
    index: str, body: VectorSearch, services: ServicesDep, principal: PrincipalDep
) -> VectorSearchPublic:
    """The rows nearest a text or vector, best first, with scores (ann, or hybrid with BM25)."""
    found = await run_in_threadpool(
        lambda: search_service(
            services,
            principal,
            index,
            query_text=body.query_text,
            query_vector=body.query_vector,
            k=body.k,
            filters=body.filters,
            query_type=body.query_type,
            columns=body.columns,
        )
    )
    return VectorSearchPublic(**found)


@router.delete(
    "/{index}", operation_id="delete_vector_index", response_model=VectorIndexPublic, responses=COMMON_ERRORS
)
async def delete_vector_index(index: str, services: ServicesDep, principal: PrincipalDep) -> VectorIndexPublic:
    """Delete the index (its table and graph); the source table stays."""
    return await run_in_threadpool(indexes.delete_vector_index, services, principal, index)
