"""Administration (admins only; the services refuse anyone else): the tenant's users and API keys
(a new key is shown once, on the page that created it), the apps its users let act for them through
OAuth (with Revoke), the tenant's settings (``mask_pii``), and the audit log with filters and older
pages. Platform admins (who may ``POST /api/v1/tenants``) also create tenants here; one who is not
an admin of their own tenant sees only that."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from servicetsunami.api.console.render import ConsoleRoute, SessionDep, call, page
from servicetsunami.api.deps import ServicesDep
from servicetsunami.api.pagination import cursor_key, page_of, timestamp
from servicetsunami.errors import PermissionDenied, TsunamiError
from servicetsunami.services.container import Services
from servicetsunami.services.governance import pii
from servicetsunami.services.identity import oauth, users
from servicetsunami.services.ops import audit
from servicetsunami.tenancy import Principal, Scope

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
AUDIT_PAGE = 50
ROLES = ("analyst", "engineer", "admin")


async def _admin_page(
    request: Request,
    services: Services,
    current: Any,
    principal: Principal,
    extra: dict[str, Any],
    *,
    status_code: int = 200,
) -> Response:
    creates_tenants = await call(lambda: _may_create_tenants(services, principal))
    context: dict[str, Any] = {
        "creates_tenants": creates_tenants,
        "manages": not creates_tenants or principal.can(Scope.MANAGE),
        "roles": ROLES,
        "new_key": None,
        "new_tenant": None,
        "tenant_form": {},
        **extra,
    }
    if context["manages"]:  # anyone but a platform admin is shown these, or refused by them
        context["users"] = await call(lambda: users.list_users(services, principal))
        context["keys"] = await call(lambda: users.list_api_keys(services, principal))
        context["mask_pii"] = await call(lambda: pii.mask_pii_enabled(services, principal))
        context["grants"] = await call(lambda: oauth.list_grants(services, principal))
    return page(request, services, current, "admin.html", context, status_code=status_code)


def _may_create_tenants(services: Services, principal: Principal) -> bool:
    """The check ``create_tenant`` makes (a platform admin), asked before showing its form."""
    try:
        users.require_platform_admin(services, principal)
    except PermissionDenied:
        return False
    return True


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


@router.post("/admin/tenants")
async def add_tenant(
    request: Request,
    services: ServicesDep,
    current: SessionDep,
    slug: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    admin_email: Annotated[str, Form()] = "",
    admin_password: Annotated[str, Form()] = "",
) -> Response:
    """A tenant (``create_tenant``, as ``POST /api/v1/tenants``), its catalog and optionally its first
    admin; said on the page that made it. A refusal is shown by the form, which keeps what was
    typed but the password."""
    principal = current.principal
    try:
        created = await call(
            lambda: users.create_tenant(
                services,
                principal,
                slug.strip(),
                name=name.strip() or None,
                admin_email=admin_email.strip() or None,
                admin_password=admin_password or None,
            )
        )
    except TsunamiError as exc:
        typed = {"slug": slug, "name": name, "admin_email": admin_email}
        refusal = {"tenant_form": typed, "code": exc.code, "message": exc.message}
        return await _admin_page(request, services, current, principal, refusal, status_code=exc.http_status)
    return await _admin_page(request, services, current, principal, {"new_tenant": created})


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
