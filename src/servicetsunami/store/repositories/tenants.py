"""Tenants, and the settings each keeps in its metadata (see the package docstring for the
conventions)."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, exists, select
from sqlalchemy.orm import Session

from servicetsunami.errors import Conflict, NotFound
from servicetsunami.store.db import flush_or_conflict
from servicetsunami.store.models import Tenant
from servicetsunami.store.repositories._statements import param


def create_tenant(session: Session, /, *, slug: str, name: str, meta: dict[str, Any] | None = None) -> Tenant:
    """Insert a tenant; :class:`Conflict` if the slug is taken. The slug is assumed checked."""
    if session.scalar(select(exists().where(Tenant.slug == slug))):
        raise Conflict(f"tenant {slug!r} already exists")
    tenant = Tenant(slug=slug, name=name, meta=dict(meta or {}))
    session.add(tenant)
    flush_or_conflict(session, f"tenant {slug!r} already exists")
    return tenant


def get_tenant(session: Session, tenant_id: str, /) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("tenant not found")
    return tenant


def get_tenant_by_slug(session: Session, slug: str, /) -> Tenant:
    tenant = session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise NotFound(f"tenant {slug!r} not found")
    return tenant


def list_tenants(session: Session, /) -> list[Tenant]:
    return list(session.scalars(select(Tenant).order_by(Tenant.slug)))


def has_tenants(session: Session, /) -> bool:
    return bool(session.scalar(select(exists().where(Tenant.id.is_not(None)))))


# ---------------------------------------------------------------------------------------------
# settings


# Built once, on the table (Core): read on the hot paths (a query's masking, a written table's personal-data check).
_TENANTS = cast(Table, Tenant.__table__)
_META = select(_TENANTS.c.metadata).where(_TENANTS.c.id == param(_TENANTS.c.id))


def tenant_settings(session: Session, tenant_id: str, /) -> dict[str, Any]:
    row = session.execute(_META, {"p_id": tenant_id}).first()
    if row is None:
        raise NotFound("tenant not found")
    return dict((row[0] or {}).get("settings") or {})


def set_tenant_setting(session: Session, tenant_id: str, key: str, value: Any, /) -> dict[str, Any]:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("tenant not found")
    meta = dict(tenant.meta or {})
    settings = dict(meta.get("settings") or {})
    settings[key] = value
    meta["settings"] = settings
    tenant.meta = meta
    session.flush()
    return settings
