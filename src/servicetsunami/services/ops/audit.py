"""The audit log as the doors use it: every write call recorded in one place (the doors' hooks call
:func:`record_call` after a REST call other than GET or an MCP tool that is not read-only), and read
back by admins of the tenant (:func:`list_audit`).

The services also write their own, more specific entries inside the change itself (``api_key.revoke``,
``create_job``...); these have no door and no outcome. The door's entry says who called what, through
which door, in which request, and how it ended (``ok`` or the error code), refused calls included.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from servicetsunami import logs
from servicetsunami.errors import TsunamiError
from servicetsunami.services.models import AuditEntry
from servicetsunami.store.repositories import audit as audit_repo
from servicetsunami.tenancy import Principal, Scope

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

logger = logging.getLogger(__name__)


def record_call(svc: Services, /, *, door: str, action: str, target: str | None, outcome: str) -> None:
    """Record one write call of the current request's caller (:data:`servicetsunami.logs.caller`);
    nothing when no caller was authenticated (the refusal itself is in the request line) or the
    audit log is off. A failure to record is logged, never raised into the answer already sent."""
    who = logs.caller.get()
    if not svc.settings.audit.enabled or not who or "tenant_id" not in who:
        return
    try:
        with svc.store.session() as session:
            audit_repo.record_audit(
                session,
                action=action,
                subject=who["subject"],
                tenant_id=who["tenant_id"],
                target=target[:512] if target else None,
                meta={"role": who.get("role", "")},
                door=door,
                request_id=logs.request_id.get()[:64],
                outcome=outcome[:64],
            )
    except TsunamiError:
        logger.exception("the audit entry of %s could not be written", action)


def list_audit(
    svc: Services,
    principal: Principal,
    /,
    *,
    action: str | None = None,
    subject: str | None = None,
    door: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """The caller's tenant's audit entries, newest first (admins only); up to ``limit + 1``."""
    principal.require(Scope.MANAGE)
    with svc.store.session() as session:
        rows = audit_repo.page_audit(
            session,
            tenant_id=principal.tenant_id,
            action=action,
            subject=subject,
            door=door,
            outcome=outcome,
            since=since,
            until=until,
            after=after,
            limit=limit,
        )
        return [
            AuditEntry(
                id=row.id,
                created_at=row.created_at,
                subject=row.subject,
                action=row.action,
                target=row.target,
                door=row.door,
                request_id=row.request_id,
                outcome=row.outcome,
            )
            for row in rows
        ]
