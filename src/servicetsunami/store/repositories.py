"""Reads and writes of the system-of-record tables, as small functions over a :class:`Session`.

The caller owns the transaction (``with store.session() as s: ...``); these functions flush so that
ids and constraint errors show up at the call, and never commit. Everything that belongs to a
tenant is looked up *within* that tenant: a row of another tenant is reported as
:class:`~servicetsunami.errors.NotFound`, exactly like a row that does not exist.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from servicetsunami.errors import Conflict, InvalidInput, NotFound
from servicetsunami.store.db import flush_or_conflict
from servicetsunami.store.models import (
    ROLES,
    ApiKey,
    AuditLog,
    Dataset,
    Tenant,
    utcnow,
)
from servicetsunami.store.source_repositories import (  # one `repo` namespace for callers
    ConnectionSecret as ConnectionSecret,
)
from servicetsunami.store.source_repositories import (
    count_connection_secrets_by_kid as count_connection_secrets_by_kid,
)
from servicetsunami.store.source_repositories import (
    create_connection as create_connection,
)
from servicetsunami.store.source_repositories import (
    delete_connection as delete_connection,
)
from servicetsunami.store.source_repositories import (
    delete_sync as delete_sync,
)
from servicetsunami.store.source_repositories import (
    find_connection_by_name as find_connection_by_name,
)
from servicetsunami.store.source_repositories import (
    find_sync_by_target as find_sync_by_target,
)
from servicetsunami.store.source_repositories import (
    get_connection as get_connection,
)
from servicetsunami.store.source_repositories import (
    get_connection_by_name as get_connection_by_name,
)
from servicetsunami.store.source_repositories import (
    get_sync as get_sync,
)
from servicetsunami.store.source_repositories import (
    list_connection_secrets as list_connection_secrets,
)
from servicetsunami.store.source_repositories import (
    list_connections as list_connections,
)
from servicetsunami.store.source_repositories import (
    list_syncs as list_syncs,
)
from servicetsunami.store.source_repositories import (
    record_connection_test as record_connection_test,
)
from servicetsunami.store.source_repositories import (
    replace_connection_secret as replace_connection_secret,
)
from servicetsunami.store.source_repositories import (
    set_connection_secret as set_connection_secret,
)
from servicetsunami.store.source_repositories import (
    update_connection as update_connection,
)
from servicetsunami.store.source_repositories import (
    update_sync_state as update_sync_state,
)
from servicetsunami.store.source_repositories import (
    upsert_sync as upsert_sync,
)

# ---------------------------------------------------------------------------------------------
# tenants


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
# api keys


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
    )
    session.add(key)
    flush_or_conflict(session, "an API key with this prefix already exists")
    return key


def list_api_keys(session: Session, /, *, tenant_id: str, include_revoked: bool = True) -> list[ApiKey]:
    stmt = select(ApiKey).where(ApiKey.tenant_id == tenant_id)
    if not include_revoked:
        stmt = stmt.where(ApiKey.revoked_at.is_(None))
    return list(session.scalars(stmt.order_by(ApiKey.created_at, ApiKey.prefix)))


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
    """Set ``last_used_at`` to ``now`` unless it was set less than ``min_interval`` ago.

    One conditional UPDATE, so concurrent requests never write the row more than once a minute.
    Returns whether the row was written.
    """
    result = session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - min_interval),
        )
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


# ---------------------------------------------------------------------------------------------
# datasets


def upsert_dataset(
    session: Session,
    /,
    *,
    tenant_id: str,
    name: str,
    table_schema: str,
    table_name: str,
    source_name: str,
    landing_path: str,
    format: str,
    rows: int,
    table_version: int,
    size_bytes: int | None = None,
    source_kind: str = "file",
    meta: dict[str, Any] | None = None,
) -> Dataset:
    """Create the dataset ``(tenant_id, name)`` or replace its fields; returns the row.

    Safe against a concurrent insert of the same name: the loser of the race updates the winner's
    row instead of failing.
    """
    fields: dict[str, Any] = {
        "table_schema": table_schema,
        "table_name": table_name,
        "source_kind": source_kind,
        "source_name": source_name,
        "landing_path": landing_path,
        "format": format,
        "rows": rows,
        "size_bytes": size_bytes,
        "table_version": table_version,
        "meta": dict(meta or {}),
    }
    dataset = find_dataset(session, name, tenant_id=tenant_id)
    if dataset is None:
        try:
            with session.begin_nested():
                dataset = Dataset(tenant_id=tenant_id, name=name, **fields)
                session.add(dataset)
            return dataset
        except IntegrityError:
            dataset = find_dataset(session, name, tenant_id=tenant_id)
            if dataset is None:  # the conflict was not on the name (e.g. unknown tenant)
                raise
    for key, value in fields.items():
        setattr(dataset, key, value)
    dataset.updated_at = utcnow()
    session.flush()
    return dataset


def find_dataset(session: Session, name: str, /, *, tenant_id: str) -> Dataset | None:
    return session.scalar(select(Dataset).where(Dataset.tenant_id == tenant_id, Dataset.name == name))


def get_dataset(session: Session, name: str, /, *, tenant_id: str) -> Dataset:
    dataset = find_dataset(session, name, tenant_id=tenant_id)
    if dataset is None:
        raise NotFound(f"dataset {name!r} not found")
    return dataset


def list_datasets(session: Session, /, *, tenant_id: str) -> list[Dataset]:
    return list(session.scalars(select(Dataset).where(Dataset.tenant_id == tenant_id).order_by(Dataset.name)))


def delete_dataset(session: Session, name: str, /, *, tenant_id: str) -> bool:
    """Delete the dataset row; returns whether there was one."""
    result = session.execute(
        delete(Dataset)
        .where(Dataset.tenant_id == tenant_id, Dataset.name == name)
        .execution_options(synchronize_session="fetch")
    )
    return bool(getattr(result, "rowcount", 0))


# ---------------------------------------------------------------------------------------------
# audit


def record_audit(
    session: Session,
    /,
    *,
    action: str,
    subject: str,
    tenant_id: str | None = None,
    target: str | None = None,
    meta: dict[str, Any] | None = None,
) -> AuditLog:
    """Append an audit entry (``action`` like ``api_key.revoke``; ``meta`` must hold no secret)."""
    entry = AuditLog(tenant_id=tenant_id, subject=subject, action=action, target=target, meta=dict(meta or {}))
    session.add(entry)
    session.flush()
    return entry


def list_audit(session: Session, /, *, tenant_id: str | None = None, limit: int = 100) -> list[AuditLog]:
    """Newest first; all tenants when ``tenant_id`` is None."""
    stmt = select(AuditLog)
    if tenant_id is not None:
        stmt = stmt.where(AuditLog.tenant_id == tenant_id)
    return list(session.scalars(stmt.order_by(AuditLog.created_at.desc()).limit(limit)))
