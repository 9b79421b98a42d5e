"""API keys of a tenant: only hashes are stored (see :mod:`servicetsunami.security.auth`); the
package docstring has the conventions."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from servicetsunami.errors import InvalidInput, NotFound
from servicetsunami.store.db import flush_or_conflict
from servicetsunami.store.models import ROLES, ApiKey, Tenant, utcnow
from servicetsunami.store.repositories._keyset import bytewise, keyset
from servicetsunami.store.repositories._session import touch_last_used


def create_api_key(
    session: Session,
    /,
    *,
    tenant_id: str,
    name: str,
    prefix: str,
    key_hash: str,
    role: str,
    expires_at: datetime | None = None,
    meta: dict[str, Any] | None = None,
    tool_set: dict[str, Any] | None = None,
) -> ApiKey:
    """Insert a key row. Takes the hash, never the key (see :mod:`servicetsunami.security.auth`)."""
    if role not in ROLES:
        raise InvalidInput(f"role {role!r} is not one of {', '.join(ROLES)}")
    key = ApiKey(
        tenant_id=tenant_id,
        name=name,
        prefix=prefix,
        key_hash=key_hash,
        role=role,
        expires_at=expires_at,
        meta=dict(meta or {}),
        tool_set=tool_set,
    )
    session.add(key)
    flush_or_conflict(session, "an API key with this prefix already exists")
    return key


def list_api_keys(
    session: Session,
    /,
    *,
    tenant_id: str,
    include_revoked: bool = True,
    after: tuple[datetime, str] | None = None,
    limit: int | None = None,
) -> list[ApiKey]:
    """Oldest first, by ``(created_at, id)``: the keys after ``after``, at most ``limit + 1``."""
    stmt = select(ApiKey).where(ApiKey.tenant_id == tenant_id)
    if not include_revoked:
        stmt = stmt.where(ApiKey.revoked_at.is_(None))
    return list(session.scalars(keyset(stmt, (ApiKey.created_at, bytewise(ApiKey.id)), after=after, limit=limit)))


def get_api_key(session: Session, key_id: str, /, *, tenant_id: str) -> ApiKey:
    """The key ``key_id`` of ``tenant_id``; :class:`NotFound` if missing or another tenant's."""
    key = session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.tenant_id == tenant_id))
    if key is None:
        raise NotFound("API key not found")
    return key


def find_api_key(session: Session, id_or_prefix: str, /, *, tenant_id: str) -> ApiKey:
    """The key of ``tenant_id`` whose id or prefix is ``id_or_prefix``; :class:`NotFound` otherwise."""
    key = session.scalar(
        select(ApiKey).where(
            ApiKey.tenant_id == tenant_id, or_(ApiKey.id == id_or_prefix, ApiKey.prefix == id_or_prefix)
        )
    )
    if key is None:
        raise NotFound("API key not found")
    return key


def get_api_key_by_prefix(session: Session, prefix: str, /) -> tuple[ApiKey, Tenant] | None:
    """The key with this public prefix and its tenant, across all tenants (for authentication)."""
    row = session.execute(
        select(ApiKey, Tenant).join(Tenant, Tenant.id == ApiKey.tenant_id).where(ApiKey.prefix == prefix)
    ).first()
    return None if row is None else (row[0], row[1])


def revoke_api_key(session: Session, key_id: str, /, *, tenant_id: str, now: datetime | None = None) -> ApiKey:
    """Mark the key revoked (idempotent: an already revoked key keeps its first revocation time)."""
    key = get_api_key(session, key_id, tenant_id=tenant_id)
    if key.revoked_at is None:
        key.revoked_at = now or utcnow()
        session.flush()
    return key


def touch_api_key(session: Session, key_id: str, /, *, now: datetime, min_interval: timedelta) -> bool:
    """:func:`~._session.touch_last_used` of an API key."""
    return touch_last_used(session, ApiKey, key_id, now=now, min_interval=min_interval)
