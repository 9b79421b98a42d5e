"""Administration (admins only; the services refuse anyone else): the tenant's users and API keys
(a new key is shown once, on the page that created it), the apps its users let act for them through
OAuth (with Revoke), the tenant's settings (``mask_pii``), and the audit log with filters and older
pages."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from servicetsunami.api.console.render import ConsoleRoute, SessionDep, call, page
from servicetsunami.api.deps import ServicesDep
from servicetsunami.api.pagination import cursor_key, page_of, timestamp
from servicetsunami.services.governance import pii
from servicetsunami.services.identity import oauth, users
from servicetsunami.services.ops import audit
from servicetsunami.tenancy import Principal

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
AUDIT_PAGE = 50
ROLES = ("analyst", "engineer", "admin")


async def _admin_page(
    request: Request, services: ServicesDep, current: Any, principal: Principal, extra: dict[str, Any]
) -> Response:
    people = await call(lambda: users.list_users(services, principal))
    keys = await call(lambda: users.list_api_keys(services, principal))
    masked = await call(lambda: pii.mask_pii_enabled(services, principal))
    grants = await call(lambda: oauth.list_grants(services, principal))
    context = {
        "users": people,
        "keys": keys,
        "grants": grants,
        "mask_pii": masked,
        "roles": ROLES,
        "new_key": None,
        **extra,
    }
    return page(request, services, current, "admin.html", context)


@router.get("/admin")
async def admin_page(request: Request, services: ServicesDep, current: SessionDep) -> Response:
    return await _admin_page(request, services, current, current.principal, {})


@router.post("/admin/users")
async def add_user(
    request: Request,
    services: ServicesDep,
    current: SessionDep,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "analyst",
    name: Annotated[str, Form()] = "",
) -> Response:
    principal = current.principal
    await call(
        lambda: users.create_user_in_tenant(services, principal, email=email, password=password, role=role, name=name)
    )
    return RedirectResponse("/admin", status_code=303)


@router.post("/admin/keys")
async def add_key(
    request: Request,
    services: ServicesDep,
    current: SessionDep,
    name: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "analyst",
    preset: Annotated[str, Form()] = "",
) -> Response:
    """A new key, shown on this answer only (never stored in a form, a cookie or a later page)."""
    principal = current.principal
    created = await call(
        lambda: users.create_api_key(services, principal, name=name, role=role, tool_preset=preset or None)
    )
    return await _admin_page(request, services, current, principal, {"new_key": created})


@router.post("/admin/keys/{key_id}/revoke")
async def revoke_key(request: Request, services: ServicesDep, current: SessionDep, key_id: str) -> Response:
    principal = current.principal
    await call(lambda: users.revoke_api_key(services, principal, key_id))
    return RedirectResponse("/admin", status_code=303)


@router.post("/admin/grants/{grant_id}/revoke")
async def revoke_grant(request: Request, services: ServicesDep, current: SessionDep, grant_id: str) -> Response:
    """End an app's access: its refresh tokens at once, its access tokens at their next request."""
    principal = current.principal
    await call(lambda: oauth.revoke_grant(services, principal, grant_id))
    return RedirectResponse("/admin", status_code=303)


@router.post("/admin/settings")
async def settings(
    request: Request, services: ServicesDep, current: SessionDep, mask_pii: Annotated[str, Form()] = ""
) -> Response:
    principal = current.principal
    await call(lambda: pii.set_mask_pii(services, principal, mask_pii == "on"))
    return RedirectResponse("/admin", status_code=303)


@router.get("/admin/audit")
async def audit_page(
    request: Request,
    services: ServicesDep,
    current: SessionDep,
    action: str = "",
    subject: str = "",
    outcome: str = "",
    cursor: str = "",
) -> Response:
    principal = current.principal
    after = cursor_key(cursor or None, timestamp, str)
    entries = await call(
        lambda: audit.list_audit(
            services,
            principal,
            action=action or None,
            subject=subject or None,
            outcome=outcome or None,
            after=after,
            limit=AUDIT_PAGE,
        )
    )
    shown = page_of(entries, key=lambda e: (e.created_at.isoformat(), e.id), limit=AUDIT_PAGE)
    filters = {"action": action, "subject": subject, "outcome": outcome}
    context = {"entries": shown.items, "next": shown.next_cursor, "filters": filters}
    return page(request, services, current, "audit.html", context)
