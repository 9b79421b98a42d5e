"""The audit log: who did what to which object, appended and never changed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from servicetsunami.store.models import AuditLog


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
