"""Silver transforms, gold tables and views, lineage and profiles over REST (the same services as MCP)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from servicetsunami.api.deps import PrincipalDep, ServicesDep
from servicetsunami.api.schemas.common import COMMON_ERRORS
from servicetsunami.services.governance import lineage, profiling
from servicetsunami.services.transforms import gold, silver

router = APIRouter(tags=["transforms"])


class SilverRequest(BaseModel):
    bronze_table: str = Field(description="'bronze.table' or 'table'")
    transformations: dict[str, Any] | None = Field(
        None, description="The cleaning spec (README); omit to re-run the stored one, {} for the default cleaning"
    )
    target_table: str | None = Field(None, description="Silver table name; the bronze name if omitted")


class GoldRequest(BaseModel):
    name: str
    sql: str = Field(max_length=100_000, description="One SELECT over silver and gold")
    materialize: Literal["table", "view"] = "table"


@router.post(
    "/silver", operation_id="transform_to_silver", response_model=silver.TransformResult, responses=COMMON_ERRORS
)
async def transform_to_silver(body: SilverRequest, services: ServicesDep, principal: PrincipalDep) -> Any:
    return await run_in_threadpool(
        lambda: silver.transform_to_silver(
            services, principal, body.bronze_table, transformations=body.transformations, target_table=body.target_table
        )
    )


@router.post(
    "/silver/preview",
    operation_id="preview_transform",
    response_model=silver.TransformPreview,
    responses=COMMON_ERRORS,
)
async def preview_transform(
    body: SilverRequest, services: ServicesDep, principal: PrincipalDep, limit: int = 20
) -> Any:
    return await run_in_threadpool(
        lambda: silver.preview_transform(
            services,
            principal,
            body.bronze_table,
            transformations=body.transformations,
            target_table=body.target_table,
            limit=limit,
        )
    )


@router.post("/gold", operation_id="create_gold_table", response_model=gold.GoldResult, responses=COMMON_ERRORS)
async def create_gold_table(body: GoldRequest, services: ServicesDep, principal: PrincipalDep) -> Any:
    return await run_in_threadpool(
        lambda: gold.create_gold_table(services, principal, body.name, body.sql, materialize=body.materialize)
    )


@router.post(
    "/gold/{name}/refresh", operation_id="refresh_gold_table", response_model=gold.GoldResult, responses=COMMON_ERRORS
)
async def refresh_gold_table(name: str, services: ServicesDep, principal: PrincipalDep) -> Any:
    return await run_in_threadpool(gold.refresh_gold_table, services, principal, name)


@router.get(
    "/tables/{schema}/{name}/lineage",
    operation_id="get_lineage",
    response_model=lineage.Lineage,
    responses=COMMON_ERRORS,
)
async def get_lineage(schema: str, name: str, services: ServicesDep, principal: PrincipalDep) -> Any:
    return await run_in_threadpool(lineage.get_lineage, services, principal, f"{schema}.{name}")


@router.get(
    "/tables/{schema}/{name}/profile",
    operation_id="profile_table",
    response_model=profiling.TableProfile,
    responses=COMMON_ERRORS,
)
async def profile_table(schema: str, name: str, services: ServicesDep, principal: PrincipalDep) -> Any:
    return await run_in_threadpool(profiling.profile_table, services, principal, f"{schema}.{name}")
