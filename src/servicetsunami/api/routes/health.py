"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from servicetsunami.api.deps import ServicesDep
from servicetsunami.api.schemas.tables import HealthReport
from servicetsunami.services.ops.health import health, readiness

router = APIRouter(tags=["health"])


@router.get("/health", operation_id="health", response_model=HealthReport, responses={503: {"model": HealthReport}})
async def get_health(services: ServicesDep) -> JSONResponse:
    """Checks the system store and the lakehouse engine for real; 503 when either fails."""
    report = await run_in_threadpool(health, services)
    return JSONResponse(report.model_dump(mode="json"), status_code=200 if report.status == "ok" else 503)


@router.get("/ready", operation_id="ready", response_model=HealthReport, responses={503: {"model": HealthReport}})
async def get_ready(services: ServicesDep) -> JSONResponse:
    """Ready to serve: the store answers and is migrated to this version's schema, the engine answers."""
    report = await run_in_threadpool(readiness, services)
    return JSONResponse(report.model_dump(mode="json"), status_code=200 if report.status == "ok" else 503)
