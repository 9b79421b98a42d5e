"""Webhook subscriptions and their deliveries (the webhooks outbox).

A run's state change queues its deliveries here, in the transaction that changes the state
(:func:`enqueue_run_event`, called by :mod:`servicetsunami.store.repositories.runs` after each
compare-and-set it won), so a crash loses none and a change that did not happen sends none.

Event types are ``<run kind>.<event>``, the event one of :data:`RUN_EVENTS` (``started`` when a worker
claims the run, then the state it ends in); ``webhook.ping`` is the test event. A subscription names
patterns: ``job_run.failed``, ``sync.*``, ``*.failed`` or ``*``.

Deliveries are claimed like runs: a compare-and-set from ``pending`` (due) to ``delivering`` for one
worker with a lease (PostgreSQL reads candidates with ``FOR UPDATE SKIP LOCKED``; on SQLite the
claim runs under the write lock); a lease that ran out (its worker died) makes the delivery claimable
again. Each attempt is recorded only by the worker holding the claim.
"""

from __future__ import annotations

import json
import secrets as _random
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from servicetsunami.errors import NotFound
from servicetsunami.store.models import Run, Webhook, WebhookDelivery, utcnow
from servicetsunami.store.repositories._keyset import bytewise, keyset
from servicetsunami.store.repositories._statements import param
from servicetsunami.store.repositories.connections import ConnectionSecret

RUN_EVENTS = ("started", "succeeded", "failed", "canceled", "timed_out", "skipped")
PING = "webhook.ping"
_STATE_EVENTS = {"running": "started", **{event: event for event in RUN_EVENTS if event != "started"}}
_LOG_KEEP = 50  # attempts kept in a delivery's log (the newest)


def new_delivery_id() -> str:
    """A ``webhook-id``: ``msg_`` and 22 random URL-safe characters (Standard Webhooks' shape)."""
    return "msg_" + _random.token_urlsafe(16)


def matches(patterns: Collection[str], event_type: str, /) -> bool:
    """Whether a subscription to ``patterns`` receives ``event_type`` (``*`` matches a whole part)."""
    kind, _, event = event_type.partition(".")
    for pattern in patterns:
        if pattern == "*":
            return True
        p_kind, _, p_event = pattern.partition(".")
        if p_kind in ("*", kind) and p_event in ("*", event):
            return True
    return False


# -- subscriptions ------------------------------------------------------------------------------


def create_webhook(
    session: Session,
    /,
    *,
    webhook_id: str,
    tenant_id: str,
    url: str,
    events: Sequence[str],
    description: str,
    enabled: bool,
    secret_ciphertext: bytes,
    secret_kid: str,
    created_by: str,
) -> Webhook:
    """Insert a subscription; ``webhook_id`` is chosen beforehand because the secret's ciphertext is
    bound to it."""
    webhook = Webhook(
        id=webhook_id,
        tenant_id=tenant_id,
        url=url,
        events=list(events),
        description=description,
        enabled=enabled,
        secret_ciphertext=secret_ciphertext,
        secret_kid=secret_kid,
        created_by=created_by,
        meta={},
    )
    session.add(webhook)
    session.flush()
    return webhook


def get_webhook(session: Session, webhook_id: str, /, *, tenant_id: str) -> Webhook:
    """The tenant's subscription; :class:`NotFound` when missing or another tenant's."""
    webhook = session.scalar(select(Webhook).where(Webhook.id == webhook_id, Webhook.tenant_id == tenant_id))
    if webhook is None:
        raise NotFound(f"webhook {webhook_id} does not exist")
    return webhook


def list_webhooks(
    session: Session, /, *, tenant_id: str, after: tuple[datetime, str] | None = None, limit: int | None = None
) -> list[Webhook]:
    """Oldest first by ``(created_at, id)``, after ``after``, at most ``limit + 1``."""
    stmt = select(Webhook).where(Webhook.tenant_id == tenant_id)
    return list(session.scalars(keyset(stmt, (Webhook.created_at, bytewise(Webhook.id)), after=after, limit=limit)))


def count_webhooks(session: Session, /, *, tenant_id: str) -> int:
    return int(session.scalar(select(func.count()).where(Webhook.tenant_id == tenant_id)) or 0)


def delete_webhook(session: Session, webhook_id: str, /, *, tenant_id: str) -> None:
    """Remove the subscription and its deliveries (pending ones are not sent)."""
    get_webhook(session, webhook_id, tenant_id=tenant_id)
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id))
    session.execute(delete(Webhook).where(Webhook.id == webhook_id, Webhook.tenant_id == tenant_id))


def list_webhook_secrets(session: Session, /, *, exclude_kid: str | None = None) -> list[ConnectionSecret]:
    """Every webhook's signing secret (for key rotation), optionally skipping one key id."""
    stmt = select(Webhook.id, Webhook.tenant_id, Webhook.secret_kid, Webhook.secret_ciphertext)
    if exclude_kid is not None:
        stmt = stmt.where(Webhook.secret_kid != exclude_kid)
    return [
        ConnectionSecret(id=row_id, tenant_id=tenant_id, kid=kid, ciphertext=bytes(ciphertext))
        for row_id, tenant_id, kid, ciphertext in session.execute(stmt.order_by(Webhook.id))
    ]


def count_webhook_secrets_by_kid(session: Session, /) -> dict[str, int]:
    rows = session.execute(select(Webhook.secret_kid, func.count()).group_by(Webhook.secret_kid))
    return {str(kid): int(count) for kid, count in rows}


def replace_webhook_secret(
    session: Session, webhook_id: str, /, *, old_ciphertext: bytes, ciphertext: bytes, kid: str
) -> bool:
    """Swap the secret for its re-encryption, only if it is still ``old_ciphertext`` (a rotation by
    an admin meanwhile wins); ``updated_at`` is kept."""
    result = session.execute(
        update(Webhook)
        .where(Webhook.id == webhook_id, Webhook.secret_ciphertext == old_ciphertext)
        .values(secret_ciphertext=ciphertext, secret_kid=kid, updated_at=Webhook.updated_at)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


# -- the outbox ---------------------------------------------------------------------------------


# Built once, on the tables (Core): every run's start and end asks (building the statement, or going
# through the ORM's execution, cost more than running it).
_HOOKS = cast(Table, Webhook.__table__)
_RUNS = cast(Table, Run.__table__)
_HOOKS_OF_TENANT = select(_HOOKS.c.id, _HOOKS.c.events).where(
    _HOOKS.c.tenant_id == param(_HOOKS.c.tenant_id), _HOOKS.c.enabled.is_(True)
)
_HOOKS_OF_RUN = select(_HOOKS.c.id, _HOOKS.c.events).where(
    _HOOKS.c.tenant_id == select(_RUNS.c.tenant_id).where(_RUNS.c.id == param(_RUNS.c.id)).scalar_subquery(),
    _HOOKS.c.enabled.is_(True),
)


def enqueue_run_event(session: Session, run_id: str, /) -> int:
    """Queue the deliveries of the state ``run_id`` is now in, one per enabled subscription of its
    tenant that asked for it; how many. Service-owned runs (no tenant) and states without an event
    (``queued``) queue nothing. One light query when the tenant has no subscription (every run
    starts and ends here, most with no one listening)."""
    hooks = session.execute(_HOOKS_OF_RUN, {"p_id": run_id}).all()
    return _enqueue(session, run_id, hooks) if hooks else 0


def enqueue_run_events(session: Session, run_ids: Collection[str], /, *, tenant_id: str | None) -> int:
    """:func:`enqueue_run_event` for runs of one tenant that just changed state (a batch of runs
    created started): one light query for all of them when the tenant has no subscription."""
    if tenant_id is None or not run_ids:
        return 0
    hooks = session.execute(_HOOKS_OF_TENANT, {"p_tenant_id": tenant_id}).all()
    return sum(_enqueue(session, run_id, hooks) for run_id in run_ids) if hooks else 0


def _enqueue(session: Session, run_id: str, hooks: Sequence[Any], /) -> int:
    """Queue the deliveries of the run's state to those of ``hooks`` (its tenant's) that asked for it."""
    run = session.scalars(
        select(Run).where(Run.id == run_id).execution_options(populate_existing=True)  # just changed by an UPDATE
    ).one()
    event = _STATE_EVENTS.get(run.state)
    if event is None:
        return 0
    event_type = f"{run.kind}.{event}"
    queued = 0
    for webhook_id, patterns in hooks:
        if matches(patterns or [], event_type):
            tenant_id = run.tenant_id or ""
            data = run_event_data(run)
            enqueue(
                session,
                tenant_id=tenant_id,
                webhook_id=webhook_id,
                event_type=event_type,
                data=data,
                run_id=run_id,
            )
            queued += 1
    return queued


def run_event_data(run: Run, /) -> dict[str, Any]:
    """What an event says about its run: what the tenant may see of it through ``get_run`` (no
    parameters, no result, no worker)."""
    duration = (
        round((run.finished_at - run.started_at).total_seconds(), 3)
        if run.finished_at is not None and run.started_at is not None
        else None
    )
    return {
        "run_id": run.id,
        "kind": run.kind,
        "state": run.state,
        "resource_id": run.resource_id,
        "parent_id": run.parent_id,
        "attempt": run.attempts,
        "error_code": run.error_code,
        "error": run.error,
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "duration_seconds": duration,
    }


def enqueue(
    session: Session,
    /,
    *,
    tenant_id: str,
    webhook_id: str,
    event_type: str,
    data: dict[str, Any],
    run_id: str | None = None,
    max_attempts: int | None = None,
    claimed_by: str | None = None,
    lease_seconds: float = 0.0,
) -> WebhookDelivery:
    """One delivery, due now; with ``claimed_by`` it is queued already claimed (a test ping sent at once)."""
    now = utcnow()
    delivery_id = new_delivery_id()
    body = {"type": event_type, "timestamp": _iso(now), "data": data}
    delivery = WebhookDelivery(
        id=delivery_id,
        tenant_id=tenant_id,
        webhook_id=webhook_id,
        event_type=event_type,
        run_id=run_id,
        payload=json.dumps(body, separators=(",", ":")),
        status="delivering" if claimed_by else "pending",
        attempts=0,
        max_attempts=max_attempts,
        next_attempt_at=now,
        claimed_by=claimed_by,
        claimed_until=now + timedelta(seconds=lease_seconds) if claimed_by else None,
        attempt_log=[],
        meta={},
    )
    session.add(delivery)
    session.flush()
    return delivery


def _due(now: datetime) -> Any:
    return or_(
        and_(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now),
        and_(WebhookDelivery.status == "delivering", WebhookDelivery.claimed_until < now),
    )


def has_due(session: Session, /, *, now: datetime | None = None) -> bool:
    """Whether a delivery waits for a worker (a plain read, before a claim)."""
    return session.scalar(select(WebhookDelivery.id).where(_due(now or utcnow())).limit(1)) is not None


def claim_due(
    session: Session, /, *, worker: str, lease_seconds: float, limit: int, now: datetime | None = None
) -> list[WebhookDelivery]:
    """Take up to ``limit`` due deliveries for ``worker`` (oldest due first), each with a lease."""
    now = now or utcnow()
    candidates = list(
        session.scalars(
            select(WebhookDelivery.id)
            .where(_due(now))
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    taken: list[str] = []
    for delivery_id in candidates:
        done = session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, _due(now))
            .values(
                status="delivering",
                claimed_by=worker,
                claimed_until=now + timedelta(seconds=lease_seconds),
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if _rowcount(done) == 1:
            taken.append(delivery_id)
    if not taken:
        return []
    return list(session.scalars(select(WebhookDelivery).where(WebhookDelivery.id.in_(taken))))


def record_attempt(
    session: Session,
    delivery_id: str,
    /,
    *,
    worker: str,
    attempt: dict[str, Any],
    status: str,
    next_attempt_at: datetime | None = None,
) -> bool:
    """Append ``attempt`` to the log and move the delivery to ``status`` (``succeeded``, ``failed``,
    or ``pending`` again at ``next_attempt_at``); False when ``worker`` no longer holds the claim."""
    row = session.execute(
        select(WebhookDelivery.attempts, WebhookDelivery.attempt_log).where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.claimed_by == worker,
            WebhookDelivery.status == "delivering",
        )
    ).first()
    if row is None:
        return False
    attempts, log = row
    now = utcnow()
    values: dict[str, Any] = {
        "status": status,
        "attempts": attempts + 1,
        "attempt_log": [*(log or []), attempt][-_LOG_KEEP:],
        "last_status_code": attempt.get("status_code"),
        "last_error": attempt.get("error"),
        "claimed_by": None,
        "claimed_until": None,
        "updated_at": now,
    }
    if status == "pending":
        values["next_attempt_at"] = next_attempt_at or now
    else:
        values["finished_at"] = now
    done = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.claimed_by == worker,
            WebhookDelivery.status == "delivering",
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(done) == 1


def get_delivery(session: Session, delivery_id: str, /) -> WebhookDelivery | None:
    return session.get(WebhookDelivery, delivery_id)


def list_deliveries(
    session: Session,
    webhook_id: str,
    /,
    *,
    tenant_id: str,
    status: str | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int | None = None,
) -> list[WebhookDelivery]:
    """The subscription's deliveries, newest first, after ``after``, at most ``limit + 1``."""
    get_webhook(session, webhook_id, tenant_id=tenant_id)
    stmt = select(WebhookDelivery).where(
        WebhookDelivery.webhook_id == webhook_id, WebhookDelivery.tenant_id == tenant_id
    )
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status)
    key = (WebhookDelivery.created_at, bytewise(WebhookDelivery.id))
    return list(session.scalars(keyset(stmt, key, after=after, limit=limit, descending=True)))


def forget_finished(session: Session, /, *, finished_before: datetime) -> int:
    """Remove deliveries that ended before ``finished_before``; how many."""
    result = session.execute(
        delete(WebhookDelivery).where(
            WebhookDelivery.status.in_(("succeeded", "failed")), WebhookDelivery.finished_at < finished_before
        )
    )
    return _rowcount(result)


def counts_by_status(session: Session, /) -> dict[str, int]:
    """Deliveries of every tenant by status."""
    query = select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
    return {status: int(n) for status, n in session.execute(query)}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
