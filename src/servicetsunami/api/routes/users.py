"""Users of the caller's tenant."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from servicetsunami.api.deps import PageDep, PrincipalDep, ServicesDep
from servicetsunami.api.pagination import Page, cursor_key, page_of
from servicetsunami.api.schemas.common import COMMON_ERRORS
from servicetsunami.api.schemas.users import UserCreate, UserPublic, UserUpdate
from servicetsunami.services.identity import users as identity

router = APIRouter(prefix="/users", tags=["users"])


@router.post("", operation_id="create_user", status_code=201, response_model=UserPublic, responses=COMMON_ERRORS)
async def create_user(body: UserCreate, services: ServicesDep, principal: PrincipalDep) -> UserPublic:
    """Add a user to your tenant (admins)."""
    return await run_in_threadpool(
        lambda: identity.create_user_in_tenant(
            services, principal, email=body.email, password=body.password, role=body.role, name=body.name
        )
    )


@router.get("", operation_id="list_users", response_model=Page[UserPublic], responses=COMMON_ERRORS)
async def list_users(services: ServicesDep, principal: PrincipalDep, page: PageDep) -> Page[UserPublic]:
    after = cursor_key(page.cursor, str, str)
    users = await run_in_threadpool(lambda: identity.list_users(services, principal, after=after, limit=page.limit))
    return page_of(users, key=lambda u: (u.email, u.id), limit=page.limit)


@router.get("/{user_id}", operation_id="get_user", response_model=UserPublic, responses=COMMON_ERRORS)
async def get_user(user_id: str, services: ServicesDep, principal: PrincipalDep) -> UserPublic:
    return await run_in_threadpool(identity.get_user, services, principal, user_id)


@router.patch("/{user_id}", operation_id="update_user", response_model=UserPublic, responses=COMMON_ERRORS)
async def update_user(user_id: str, body: UserUpdate, services: ServicesDep, principal: PrincipalDep) -> UserPublic:
    """Change role, name, password or disable a user (admins; anyone their own name and password)."""
    return await run_in_threadpool(
        lambda: identity.update_user(
            services,
            principal,
            user_id,
            role=body.role,
            name=body.name,
            active=body.active,
            password=body.password,
        )
    )
