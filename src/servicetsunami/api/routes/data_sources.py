"""Data sources (connections, credentials write-only) and their syncs into bronze."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from servicetsunami.api.deps import PageDep, PrincipalDep, ServicesDep
from servicetsunami.api.pagination import Page, cursor_key, page_of, paginate
from servicetsunami.api.schemas.common import COMMON_ERRORS
from servicetsunami.api.schemas.data_sources import (
    ConnectionTest,
    DataSourceCreate,
    DataSourceCreated,
    DataSourcePublic,
    SourceKindPublic,
    SourceTable,
    SyncCreate,
    SyncPublic,
    SyncRunPublic,
)
from servicetsunami.errors import InvalidInput
from servicetsunami.services.ingestion import connections, syncs

router = APIRouter(prefix="/data-sources", tags=["data-sources"])


@router.post(
    "", operation_id="create_data_source", status_code=201, response_model=DataSourceCreated, responses=COMMON_ERRORS
)
async def create_data_source(
    body: DataSourceCreate, services: ServicesDep, principal: PrincipalDep
) -> DataSourceCreated:
    """Store a connection of any kind (secrets encrypted, never returned) and test it."""
    if body.config is not None:
        config = body.config
        secrets = {k: v.get_secret_value() for k, v in (body.secrets or {}).items()}
        return await run_in_threadpool(
            lambda: connections.connect_source(
                services, principal, kind=body.kind, name=body.name, config=config, secrets=secrets
            )
        )
    if body.kind != "postgres" or body.host is None or body.database is None or body.user is None:
        raise InvalidInput(
            "give `config` (and `secrets`) for the kind; only postgres may be given by host, database, user"
        )
    password = body.password.get_secret_value() if body.password is not None else None
    host, database, user = body.host, body.database, body.user
    return await run_in_threadpool(
        lambda: connections.connect_postgres(
            services,
            principal,
            name=body.name,
            host=host,
            port=body.port,
            database=database,
            user=user,
            password=password,
            sslmode=body.sslmode,
            schemas=body.schemas,
        )
    )


@router.get("", operation_id="list_data_sources", response_model=Page[DataSourcePublic], responses=COMMON_ERRORS)
async def list_data_sources(services: ServicesDep, principal: PrincipalDep, page: PageDep) -> Page[DataSourcePublic]:
    after = cursor_key(page.cursor, str, str)
    items = await run_in_threadpool(
        lambda: connections.list_connections(services, principal, after=after, limit=page.limit)
    )
    return page_of(items, key=lambda c: (c.name, c.id), limit=page.limit)


# Before "/{source_id}" routes, so that "kinds" and "syncs" are never read as a source id.
@router.get("/kinds", operation_id="list_source_kinds", response_model=list[SourceKindPublic], responses=COMMON_ERRORS)
async def list_source_kinds(services: ServicesDep, principal: PrincipalDep) -> list[SourceKindPublic]:
    """The kinds of source that can be connected, each with the JSON schema of its settings."""
    return await run_in_threadpool(connections.list_source_kinds, services, principal)


@router.get("/syncs/{run_id}", operation_id="get_sync_run", response_model=SyncRunPublic, responses=COMMON_ERRORS)
async def get_sync_run(run_id: str, services: ServicesDep, principal: PrincipalDep) -> SyncRunPublic:
    """Status, rows, bytes, timings and error of a sync run."""
    return await run_in_threadpool(syncs.get_sync_status, services, principal, run_id)


@router.post(
    "/syncs/{run_id}/cancel", operation_id="cancel_sync_run", response_model=SyncRunPublic, responses=COMMON_ERRORS
)
async def cancel_sync_run(run_id: str, services: ServicesDep, principal: PrincipalDep) -> SyncRunPublic:
    """Stop a running sync; the bronze table keeps its last committed version."""
    return await run_in_threadpool(syncs.cancel_sync, services, principal, run_id)


@router.get("/{source_id}", operation_id="get_data_source", response_model=DataSourcePublic, responses=COMMON_ERRORS)
async def get_data_source(source_id: str, services: ServicesDep, principal: PrincipalDep) -> DataSourcePublic:
    return await run_in_threadpool(connections.get_connection, services, principal, source_id)


@router.post(
    "/{source_id}/test", operation_id="test_data_source", response_model=ConnectionTest, responses=COMMON_ERRORS
)
async def test_data_source(source_id: str, services: ServicesDep, principal: PrincipalDep) -> ConnectionTest:
    """Connect now: latency and server version, or what failed and what to do about it."""
    return await run_in_threadpool(connections.test_connection, services, principal, source_id)


@router.get(
    "/{source_id}/tables",
    operation_id="list_data_source_tables",
    response_model=Page[SourceTable],
    responses=COMMON_ERRORS,
)
async def list_data_source_tables(
    source_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    page: PageDep,
    schema: Annotated[str | None, Query(max_length=128, description="Only this schema")] = None,
) -> Page[SourceTable]:
    """Tables and views with row estimates, sizes, keys, columns and cursor candidates."""
    items = await run_in_threadpool(
        lambda: connections.list_source_tables(services, principal, source_id, schema=schema)
    )
    return paginate(items, key=lambda t: (t.name,), limit=page.limit, cursor=page.cursor)


@router.post(
    "/{source_id}/syncs",
    operation_id="start_sync",
    status_code=202,
    response_model=SyncRunPublic,
    responses=COMMON_ERRORS,
)
async def start_sync(source_id: str, body: SyncCreate, services: ServicesDep, principal: PrincipalDep) -> SyncRunPublic:
    """Start copying a source table into bronze (exactly once); poll GET /data-sources/syncs/{run_id}."""

    def run() -> SyncRunPublic:
        run_id = syncs.start_sync(
            services,
            principal,
            source_id,
            body.table_name,
            sync_mode=body.sync_mode,
            cursor_column=body.cursor_column,
            primary_key=body.primary_key,
            target_table=body.target_table,
        )
        return syncs.wait_for_run(services, principal, run_id, timeout=body.wait_seconds)

    return await run_in_threadpool(run)


@router.get(
    "/{source_id}/syncs",
    operation_id="list_data_source_syncs",
    response_model=Page[SyncPublic],
    responses=COMMON_ERRORS,
)
async def list_data_source_syncs(
    source_id: str, services: ServicesDep, principal: PrincipalDep, page: PageDep
) -> Page[SyncPublic]:
    """The syncs configured from this source, each with its last run."""
    after = cursor_key(page.cursor, str, str)
    items = await run_in_threadpool(
        lambda: syncs.list_source_syncs(services, principal, source_id, after=after, limit=page.limit)
    )
    return page_of(items, key=lambda s: (s.bronze_table, s.sync_id), limit=page.limit)
