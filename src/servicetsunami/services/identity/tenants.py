"""Tenants and their API keys: the operator-level service functions behind the CLI and REST.

These take the :class:`~servicetsunami.store.db.Store` and no principal: creating tenants and
keys is an operator's act (the CLI on the server, or a REST route that checks the caller's
``manage`` permission before calling in). Every change is written to the audit log with ``actor``
as its subject.

A key's plaintext exists in exactly one place: the :class:`CreatedKey` returned when it is made.
It is never stored, logged or returned again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from servicetsunami.errors import Conflict, InvalidInput
from servicetsunami.security import auth
from servicetsunami.store.db import Store
from servicetsunami.store.models import ApiKey, Tenant, utcnow
from servicetsunami.store.repositories import api_keys as api_keys_repo
from servicetsunami.store.repositories import audit as audit_repo
from servicetsunami.store.repositories import tenants as tenants_repo
from servicetsunami.tenancy import Role, check_slug
from servicetsunami.toolsets import ToolSet

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

logger = logging.getLogger(__name__)

BOOTSTRAP_KEY_NAME = "bootstrap-admin"
_MAX_NAME = 200


class TenantPublic(BaseModel):
    id: str
    slug: str
    name: str
    created_at: datetime


class ApiKeyPublic(BaseModel):
    """An API key as listings show it: never the key, never its hash."""

    id: str
    tenant_slug: str = Field(description="Slug of the tenant the key belongs to")
    name: str
    prefix: str = Field(description="Public part of the key (tsk_<prefix>_...)")
    role: Role
    created_at: datetime
    last_used_at: datetime | None = Field(None, description="Updated at most once a minute")
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    active: bool = Field(description="Neither revoked nor expired")
    tool_preset: str | None = Field(
        None, description="The key's tool preset (minimal, analyst, engineer, admin); None: its role's tools"
    )
    tools: list[str] | None = Field(
        None, description="Tools the key sees besides its preset's (or alone, without a preset); None: no list"
    )


class CreatedKey(ApiKeyPublic):
    """A key just created. ``plaintext`` is shown this once and cannot be recovered later."""

    plaintext: str = Field(repr=False, description="The key itself; store it now, it is not kept")


def create_tenant(store: Store, slug: str, *, name: str | None = None, actor: str = "operator") -> TenantPublic:
    """Create the tenant ``slug`` (:class:`Conflict` if it exists). ``name`` defaults to the slug."""
    check_slug(slug)
    display_name = _check_name(name if name is not None else slug, what="tenant name")
    with store.session(write_lock=True) as session:
        tenant = tenants_repo.create_tenant(session, slug=slug, name=display_name)
        audit_repo.record_audit(session, action="tenant.create", subject=actor, tenant_id=tenant.id, target=slug)
        public = _tenant_public(tenant)
    logger.info("tenant created", extra={"tenant": slug})
    return public


def list_tenants(store: Store) -> list[TenantPublic]:
    with store.session() as session:
        return [_tenant_public(t) for t in tenants_repo.list_tenants(session)]


def create_api_key(
    store: Store,
    *,
    tenant_slug: str,
    name: str,
    role: Role | str,
    expires_at: datetime | None = None,
    actor: str = "operator",
    tool_preset: str | None = None,
    tools: Sequence[str] | None = None,
) -> CreatedKey:
    """Make a key for the tenant; the returned :class:`CreatedKey` holds the plaintext, once.

    With ``tool_preset`` and/or ``tools`` the key sees only those MCP tools (within its role's):
    see :mod:`servicetsunami.toolsets`. Unknown names are refused with ``InvalidInput``."""
    checked_role = _check_role(role)
    tool_set = ToolSet.of(preset=tool_preset or "", enabled=tools or ()) if tool_preset or tools else None
    key_name = _check_name(name, what="key name")
    if expires_at is not None and expires_at.tzinfo is None:
        raise InvalidInput("expires_at must carry a time zone")
    with store.session(write_lock=True) as session:
        tenant = tenants_repo.get_tenant_by_slug(session, tenant_slug)
        return _new_key(session, tenant, key_name, checked_role, expires_at=expires_at, actor=actor, tool_set=tool_set)


def list_api_keys(
    store: Store, *, tenant_slug: str, after: tuple[datetime, str] | None = None, limit: int | None = None
) -> list[ApiKeyPublic]:
    """The tenant's keys, revoked ones included (their ``active`` is false), oldest first.

    ``after`` and ``limit`` page through them by ``(created_at, id)``: at most ``limit + 1`` keys
    come back, the extra one saying that another page follows. Without them, every key.
    """
    with store.session() as session:
        tenant = tenants_repo.get_tenant_by_slug(session, tenant_slug)
        now = utcnow()
        keys = api_keys_repo.list_api_keys(session, tenant_id=tenant.id, after=after, limit=limit)
        return [_key_public(k, tenant, now) for k in keys]


def revoke_api_key(store: Store, *, tenant_slug: str, key_id_or_prefix: str, actor: str = "operator") -> ApiKeyPublic:
    """Revoke a key of the tenant by id or prefix (``tsk_<prefix>`` accepted too).

    A key of another tenant is :class:`~servicetsunami.errors.NotFound`. Revoking twice is fine.
    """
    ref = key_id_or_prefix.strip()
    if ref.startswith(f"{auth.KEY_SCHEME}_"):
        ref = ref.split("_")[1]
    with store.session(write_lock=True) as session:
        tenant = tenants_repo.get_tenant_by_slug(session, tenant_slug)
        key = api_keys_repo.find_api_key(session, ref, tenant_id=tenant.id)
        already = key.revoked_at is not None
        auth.revoke_api_key(session, key.id, tenant_id=tenant.id)
        if not already:
            audit_repo.record_audit(
                session,
                action="api_key.revoke",
                subject=actor,
                tenant_id=tenant.id,
                target=f"key:{key.prefix}",
            )
        public = _key_public(key, tenant, utcnow())
    # Evicted again after commit: a request that read the key before the commit may have cached it.
    auth.evict_cached_key(key.key_hash)
    return public


def bootstrap_service(svc: Services) -> CreatedKey | None:
    """On the first start only: the default tenant, its catalog and an admin key (returned once)."""
    created = bootstrap(svc.store, default_tenant=svc.settings.default_tenant)
    if created is not None:
        svc.engine.ensure_catalog(svc.settings.catalog_prefix + created.tenant_slug)
    return created


def bootstrap(store: Store, *, default_tenant: str) -> CreatedKey | None:
    """On the very first start (no tenant at all), create ``default_tenant`` and an admin key.

    Returns the key so the entry point can print it once; returns None on every later start, and
    also when another process bootstrapped at the same moment.
    """
    check_slug(default_tenant)
    try:
        with store.session(write_lock=True) as session:
            if tenants_repo.has_tenants(session):
                return None
            tenant = tenants_repo.create_tenant(session, slug=default_tenant, name=default_tenant)
            audit_repo.record_audit(
                session,
                action="tenant.create",
                subject="system:bootstrap",
                tenant_id=tenant.id,
                target=tenant.slug,
            )
            created = _new_key(session, tenant, BOOTSTRAP_KEY_NAME, Role.ADMIN, actor="system:bootstrap")
    except Conflict:
        # PostgreSQL: another process created the tenant between our check and our insert.
        return None
    logger.info("bootstrapped tenant and admin key", extra={"tenant": default_tenant})
    return created


def _new_key(
    session: Session,
    tenant: Tenant,
    name: str,
    role: Role,
    *,
    actor: str,
    expires_at: datetime | None = None,
    tool_set: ToolSet | None = None,
) -> CreatedKey:
    plaintext, prefix, key_hash = auth.generate_api_key()
    key = api_keys_repo.create_api_key(
        session,
        tenant_id=tenant.id,
        name=name,
        prefix=prefix,
        key_hash=key_hash,
        role=role.value,
        expires_at=expires_at,
        tool_set=None if tool_set is None else tool_set.to_json(),
    )
    audit_repo.record_audit(
        session,
        action="api_key.create",
        subject=actor,
        tenant_id=tenant.id,
        target=f"key:{prefix}",
        meta={"name": name, "role": role.value, **({} if tool_set is None else {"tool_set": tool_set.to_json()})},
    )
    public = _key_public(key, tenant, utcnow())
    return CreatedKey(**public.model_dump(), plaintext=plaintext)


def _tenant_public(tenant: Tenant) -> TenantPublic:
    return TenantPublic(id=tenant.id, slug=tenant.slug, name=tenant.name, created_at=tenant.created_at)


def _key_public(key: ApiKey, tenant: Tenant, now: datetime) -> ApiKeyPublic:
    tool_set = ToolSet.from_json(key.tool_set)
    return ApiKeyPublic(
        id=key.id,
        tenant_slug=tenant.slug,
        name=key.name,
        prefix=key.prefix,
        role=Role(key.role),
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        active=key.is_active(now),
        tool_preset=(tool_set.preset or None) if tool_set is not None else None,
        tools=sorted(tool_set.enabled) if tool_set is not None and tool_set.enabled else None,
    )


def _check_role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InvalidInput(f"role {role!r} is not one of {', '.join(r.value for r in Role)}") from None


def _check_name(name: str, *, what: str) -> str:
    cleaned = name.strip() if isinstance(name, str) else ""
    if not cleaned or len(cleaned) > _MAX_NAME:
        raise InvalidInput(f"{what} must be 1 to {_MAX_NAME} characters")
    return cleaned
