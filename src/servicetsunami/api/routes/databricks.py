"""The lakehouse status endpoints, at the paths the platform's web app uses (``/databricks/...``);
they answer for whichever engine serves the tenant (``engine`` says which)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from servicetsunami.api.deps import PrincipalDep, ServicesDep
from servicetsunami.api.schemas.common import COMMON_ERRORS
from servicetsunami.api.schemas.tables import LakehouseHealth, LakehouseStatus, LakehouseUsage
from servicetsunami.services.catalog import lakehouse

router = APIRouter(prefix="/databricks", tags=["lakehouse"])


@router.get("/status", operation_id="lakehouse_status", response_model=LakehouseStatus, responses=COMMON_ERRORS)
async def status(services: ServicesDep, principal: PrincipalDep) -> LakehouseStatus:
    """Engine kind, whether it answers (and how fast), your catalog's name and whether it exists."""
    return await run_in_threadpool(lakehouse.status, services, principal)


@router.post(
    "/initialize", operation_id="lakehouse_initialize", response_model=LakehouseStatus, responses=COMMON_ERRORS
)
async def initialize(services: ServicesDep, principal: PrincipalDep) -> LakehouseStatus:
    """Create your catalog, its bronze/silver/gold schemas and landing volume (idempotent; admins)."""
    return await run_in_threadpool(lakehouse.initialize, services, principal)


@router.get("/usage", operation_id="lakehouse_usage", response_model=LakehouseUsage, responses=COMMON_ERRORS)
async def usage(services: ServicesDep, principal: PrincipalDep) -> LakehouseUsage:
    """Counts of datasets, sources, syncs and tables; rows and bytes in your catalog."""
    return await run_in_threadpool(lakehouse.usage, services, principal)


@router.get(
    "/health",
    operation_id="lakehouse_health",
    response_model=LakehouseHealth,
    responses={503: {"model": LakehouseHealth}},
)
async def health(services: ServicesDep) -> JSONResponse:
    """Public and cheap: does the engine answer."""
    report = await run_in_threadpool(lakehouse.health, services)
    return JSONResponse(report.model_dump(mode="json"), status_code=200 if report.status == "ok" else 503)
