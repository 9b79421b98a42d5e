"""The audit log: who did what to which object, appended and never changed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from servicetsunami.store.models import AuditLog
from servicetsunami.store.repositories._keyset import bytewise, keyset


def record_audit(
    session: Session,
    /,
    *,
    action: str,
    subject: str,
    tenant_id: str | None = None,
    target: str | None = None,
    meta: dict[str, Any] | None = None,
    door: str | None = None,
    request_id: str | None = None,
    outcome: str | None = None,
) -> AuditLog:
    """Append an audit entry (``action`` like ``api_key.revoke``; ``meta`` must hold no secret)."""
    entry = AuditLog(
        tenant_id=tenant_id,
        subject=subject,
        action=action,
        target=target,
        meta=dict(meta or {}),
        door=door,
        request_id=request_id,
        outcome=outcome,
    )
    session.add(entry)
    session.flush()
    return entry


def list_audit(session: Session, /, *, tenant_id: str | None = None, limit: int = 100) -> list[AuditLog]:
    """Newest first; all tenants when ``tenant_id`` is None."""
    stmt = select(AuditLog)
    if tenant_id is not None:
        stmt = stmt.where(AuditLog.tenant_id == tenant_id)
    return list(session.scalars(stmt.order_by(AuditLog.created_at.desc()).limit(limit)))


def page_audit(
    session: Session,
    /,
    *,
    tenant_id: str,
    action: str | None = None,
    subject: str | None = None,
    door: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int,
) -> list[AuditLog]:
    """One tenant's entries, newest first, filtered; up to ``limit + 1`` rows after the key
    ``after`` (the extra one says another page follows). ``action`` ending in ``*`` is a prefix."""
    stmt = select(AuditLog).where(AuditLog.tenant_id == tenant_id)
    if action:
        stmt = stmt.where(
            AuditLog.action.startswith(action[:-1], autoescape=True)
            if action.endswith("*")
            else AuditLog.action == action
        )
    if subject:
        stmt = stmt.where(AuditLog.subject == subject)
    if door:
        stmt = stmt.where(AuditLog.door == door)
    if outcome:
        stmt = stmt.where(AuditLog.outcome == outcome)
    if since is not None:
        stmt = stmt.where(AuditLog.created_at >= since)
    if until is not None:
        stmt = stmt.where(AuditLog.created_at < until)
    stmt = keyset(stmt, (AuditLog.created_at, bytewise(AuditLog.id)), after=after, limit=limit, descending=True)
    return list(session.scalars(stmt))
