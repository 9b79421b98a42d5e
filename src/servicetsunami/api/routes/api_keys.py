"""API keys of the caller's tenant."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from servicetsunami.api.deps import PageDep, PrincipalDep, ServicesDep
from servicetsunami.api.pagination import Page, cursor_key, page_of, timestamp
from servicetsunami.api.schemas.api_keys import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic
from servicetsunami.api.schemas.common import COMMON_ERRORS
from servicetsunami.services.identity import users

router = APIRouter(prefix="/api-keys", tags=["api-keys"])


@router.post("", operation_id="create_api_key", status_code=201, response_model=ApiKeyCreated, responses=COMMON_ERRORS)
async def create_api_key(body: ApiKeyCreate, services: ServicesDep, principal: PrincipalDep) -> ApiKeyCreated:
    """Make a key for your tenant. The key itself (`plaintext`) is in this answer only."""
    return await run_in_threadpool(
        lambda: users.create_api_key(
            services,
            principal,
            name=body.name,
            role=body.role,
            expires_at=body.expires_at,
            tool_preset=body.tool_preset,
            tools=body.tools,
        )
    )


@router.get("", operation_id="list_api_keys", response_model=Page[ApiKeyPublic], responses=COMMON_ERRORS)
async def list_api_keys(services: ServicesDep, principal: PrincipalDep, page: PageDep) -> Page[ApiKeyPublic]:
    after = cursor_key(page.cursor, timestamp, str)
    keys = await run_in_threadpool(lambda: users.list_api_keys(services, principal, after=after, limit=page.limit))
    return page_of(keys, key=lambda k: (k.created_at.isoformat(), k.id), limit=page.limit)


@router.delete("/{key_id}", operation_id="revoke_api_key", response_model=ApiKeyPublic, responses=COMMON_ERRORS)
async def revoke_api_key(key_id: str, services: ServicesDep, principal: PrincipalDep) -> ApiKeyPublic:
    """Revoke a key at once (idempotent)."""
    return await run_in_threadpool(users.revoke_api_key, services, principal, key_id)
