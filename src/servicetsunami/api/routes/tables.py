"""Tables of the caller's catalog and read-only SQL over them."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from servicetsunami.api.deps import PrincipalDep, ServicesDep
from servicetsunami.services import catalog
from servicetsunami.services.models import QueryResult, TableDescription, TableInfo
from servicetsunami.services.query import query_sql

router = APIRouter(tags=["tables"])


class QueryRequest(BaseModel):
    sql: str = Field(description="One read-only Databricks SQL statement", max_length=100_000)
    max_rows: int | None = Field(None, ge=1, description="Lower the row cap for this query")


@router.get("/tables", operation_id="list_tables", response_model=list[TableInfo])
async def list_tables(services: ServicesDep, principal: PrincipalDep, layer: str | None = None) -> list[TableInfo]:
    return await run_in_threadpool(catalog.list_tables, services, principal, layer=layer)


@router.get("/tables/{schema}/{name}", operation_id="describe_table", response_model=TableDescription)
async def describe_table(
    schema: str, name: str, services: ServicesDep, principal: PrincipalDep, version: int | None = None
) -> TableDescription:
    return await run_in_threadpool(
        lambda: catalog.describe_table(services, principal, f"{schema}.{name}", version=version)
    )


@router.post("/query", operation_id="query_sql", response_model=QueryResult)
async def query(body: QueryRequest, services: ServicesDep, principal: PrincipalDep) -> QueryResult:
    return await run_in_threadpool(lambda: query_sql(services, principal, body.sql, max_rows=body.max_rows))
