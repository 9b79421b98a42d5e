"""Tables of the caller's catalog and read-only SQL over them."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool

from servicetsunami.api.deps import PageDep, PrincipalDep, QueryPrincipalDep, ServicesDep, read_metadata
from servicetsunami.api.pagination import Page, paginate
from servicetsunami.api.schemas.common import COMMON_ERRORS
from servicetsunami.api.schemas.tables import QueryCreate, QueryResult, TableDescription, TableInfo
from servicetsunami.services.catalog import tables
from servicetsunami.services.catalog.query import query_sql

router = APIRouter(tags=["tables"])

Name = Annotated[str, Path(min_length=1, max_length=128)]


@router.get("/tables", operation_id="list_tables", response_model=Page[TableInfo], responses=COMMON_ERRORS)
async def list_tables(
    services: ServicesDep,
    principal: PrincipalDep,
    page: PageDep,
    layer: Annotated[Literal["bronze", "silver", "gold"] | None, Query(description="Only this schema")] = None,
) -> Page[TableInfo]:
    items = await read_metadata(services, lambda: tables.list_tables(services, principal, layer=layer))
    return paginate(items, key=lambda t: (t.schema_, t.name), limit=page.limit, cursor=page.cursor)


@router.get(
    "/tables/{schema}/{name}", operation_id="describe_table", response_model=TableDescription, responses=COMMON_ERRORS
)
async def describe_table(
    schema: Name,
    name: Name,
    services: ServicesDep,
    principal: PrincipalDep,
    version: Annotated[int | None, Query(ge=0, description="Time travel to this version")] = None,
) -> TableDescription:
    """Columns, types, rows, size, files, recent history and where the rows came from."""
    return await read_metadata(
        services, lambda: tables.describe_table(services, principal, f"{schema}.{name}", version=version)
    )


@router.post("/query", operation_id="query_sql", response_model=QueryResult, responses=COMMON_ERRORS)
async def query(body: QueryCreate, services: ServicesDep, principal: QueryPrincipalDep) -> QueryResult:
    """One read-only Databricks SQL statement over your catalog, capped in rows, bytes and time."""
    return await run_in_threadpool(lambda: query_sql(services, principal, body.sql, max_rows=body.max_rows))
