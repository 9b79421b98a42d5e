"""Tenants: created by a platform admin."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from servicetsunami.api.deps import PrincipalDep, ServicesDep
from servicetsunami.api.schemas.common import COMMON_ERRORS
from servicetsunami.api.schemas.tenants import TenantCreate, TenantPublic
from servicetsunami.services.identity import users

router = APIRouter(prefix="/tenants", tags=["tenants"])


@router.post("", operation_id="create_tenant", status_code=201, response_model=TenantPublic, responses=COMMON_ERRORS)
async def create_tenant(body: TenantCreate, services: ServicesDep, principal: PrincipalDep) -> TenantPublic:
    """Create a tenant, its lakehouse catalog and optionally its first admin user (platform admins only)."""
    return await run_in_threadpool(
        lambda: users.create_tenant(
            services,
            principal,
            body.slug,
            name=body.name,
            admin_email=body.admin_email,
            admin_password=body.admin_password,
        )
    )
