"""Webhook deliveries: the outbox of run state changes posted to the tenants' receivers.

A run's state change queues its deliveries in the store, in the transaction that makes the change
(:mod:`servicetsunami.store.repositories.webhooks`). Every worker's ticker queues a run of kind
``webhook_delivery`` (one at a time across workers, like the mirror's replays) when one is due; the
run claims due deliveries in the store (one worker per delivery, with a lease that a dead worker's
claim outlives by little) and posts each:

- to an address of the URL's host vetted at that moment (DNS may have changed since the webhook was
  created) and pinned for the request, the TLS name still the host's; no redirect is followed;
- signed as the Standard Webhooks specification says: headers ``webhook-id`` (the delivery's id, the
  same on every attempt), ``webhook-timestamp`` (seconds), ``webhook-signature``
  (``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` with the secret's key), body JSON
  ``{"type", "timestamp", "data"}``;
- a 2xx answer delivers it; a network error, a timeout, 429 or 5xx is retried after
  ``webhooks.backoff_seconds`` doubling each time (each wait 50-100% of that, capped by
  ``webhooks.max_backoff_seconds``; a ``Retry-After`` is honoured up to the cap) until
  ``webhooks.max_attempts``; anything else (a redirect, another 4xx, a refused host) fails it at once.

Deliveries that ended are kept in the log for ``webhooks.keep_days``, then removed by the next run.

Every attempt is recorded on the delivery (time, status code, duration, error class) and counted in
``webhook_deliveries_total{outcome}``. Neither the secret nor the URL's query is ever logged.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from servicetsunami import __version__, metrics
from servicetsunami.errors import InvalidInput, PermissionDenied, TsunamiError
from servicetsunami.services.ops import webhooks
from servicetsunami.services.runs import service as runs
from servicetsunami.services.runs.context import RunContext
from servicetsunami.services.runs.kinds import RunKind, register
from servicetsunami.store.models import Webhook, WebhookDelivery, utcnow
from servicetsunami.store.repositories import webhooks as repo
from servicetsunami.tenancy import Principal, Scope

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

logger = logging.getLogger(__name__)

KIND = "webhook_delivery"
_RETRIED_STATUS = (429, 500, 502, 503, 504)
_CLAIM_BATCH = 4  # deliveries claimed at once, per parallel sender


@dataclass(frozen=True, slots=True)
class _Claimed:
    """What one attempt needs, read while the delivery was claimed."""

    id: str
    tenant_id: str
    webhook_id: str
    payload: str
    attempts: int
    max_attempts: int | None
    url: str
    enabled: bool
    secret_ciphertext: bytes


@dataclass(frozen=True, slots=True)
class _Result:
    status_code: int | None
    error: str | None
    retryable: bool
    retry_after: float | None = None


def signature(secret: str, delivery_id: str, timestamp: int, body: bytes, /) -> str:
    """The ``webhook-signature`` header value of one attempt."""
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(webhooks.signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


# -- the ping -----------------------------------------------------------------------------------


def test_webhook(svc: Services, principal: Principal, webhook_id: str, /) -> webhooks.DeliveryPublic:
    """Send a ``webhook.ping`` event now and answer how it went (one attempt, never retried)."""
    principal.require(Scope.MANAGE)
    worker = svc.launcher.worker_id
    with svc.store.session(write_lock=True) as session:
        row = repo.get_webhook(session, webhook_id, tenant_id=principal.tenant_id)
        delivery = repo.enqueue(
            session,
            tenant_id=principal.tenant_id,
            webhook_id=webhook_id,
            event_type=repo.PING,
            data={"webhook_id": webhook_id, "message": "a test event sent by test_webhook"},
            max_attempts=1,
            claimed_by=worker,
            lease_seconds=_lease(svc),
        )
        claimed = _claimed(delivery, row)
    with _client(svc) as client:
        _deliver(svc, client, claimed, worker)
    with svc.store.session() as session:
        found = repo.get_delivery(session, claimed.id)
        if found is None:  # the webhook was deleted meanwhile
            raise InvalidInput("the webhook was deleted while its test event was sent")
        return webhooks.delivery_public(found)


# -- the outbox worker --------------------------------------------------------------------------


def deliver_due(svc: Services, /, *, stop: Callable[[], bool] = lambda: False) -> int:
    """Claim and send due deliveries until none is due (or ``stop()``); how many were attempted."""
    cfg = svc.settings.webhooks
    worker = svc.launcher.worker_id
    attempted = 0
    with _client(svc) as client, ThreadPoolExecutor(cfg.max_parallel, thread_name_prefix="webhooks") as pool:
        while not stop():
            with svc.store.session(write_lock=True) as session:
                rows = repo.claim_due(
                    session, worker=worker, lease_seconds=_lease(svc), limit=cfg.max_parallel * _CLAIM_BATCH
                )
                hooks = {h.id: h for h in session.query(Webhook).filter(Webhook.id.in_({r.webhook_id for r in rows}))}
                claimed = [_claimed(r, hooks[r.webhook_id]) for r in rows if r.webhook_id in hooks]
            if not claimed:
                break
            list(pool.map(lambda c: _deliver(svc, client, c, worker), claimed))
            attempted += len(claimed)
    return attempted


def has_due(svc: Services, /) -> bool:
    with svc.store.session() as session:
        return repo.has_due(session)


def outbox_depth(svc: Services, /) -> dict[str, int]:
    """Deliveries of every tenant by status (pending, delivering, succeeded, failed)."""
    with svc.store.session() as session:
        counts = repo.counts_by_status(session)
    return {status: counts.get(status, 0) for status in ("pending", "delivering", "succeeded", "failed")}


def _deliver(svc: Services, client: httpx.Client, claimed: _Claimed, worker: str) -> None:
    cfg = svc.settings.webhooks
    at = utcnow()
    started = time.perf_counter()
    result = _attempt(svc, client, claimed)
    duration = round((time.perf_counter() - started) * 1000, 2)
    attempt = {"at": at.isoformat(), "status_code": result.status_code, "duration_ms": duration, "error": result.error}
    attempts = claimed.attempts + 1
    limit = claimed.max_attempts if claimed.max_attempts is not None else cfg.max_attempts
    next_at: datetime | None = None
    if result.error is None:
        status, outcome = "succeeded", "delivered"
    elif result.retryable and attempts < limit:
        status, outcome = "pending", "retrying"
        next_at = utcnow() + timedelta(seconds=_backoff(svc, attempts, result.retry_after))
    else:
        status, outcome = "failed", "failed"
    try:
        with svc.store.session(write_lock=True) as session:  # read, then write: SQLite's lock first
            recorded = repo.record_attempt(
                session, claimed.id, worker=worker, attempt=attempt, status=status, next_attempt_at=next_at
            )
    except TsunamiError as exc:  # the store is away: the claim runs out and the delivery is tried again
        logger.warning("webhook delivery %s: its attempt could not be recorded (%s)", claimed.id, exc.code)
        return
    metrics.WEBHOOK_DELIVERIES.labels(outcome).inc()
    if not recorded:
        logger.warning("webhook delivery %s was claimed by another worker meanwhile", claimed.id)
    elif outcome == "delivered":
        logger.info("webhook delivery %s delivered (attempt %d)", claimed.id, attempts)
    else:
        logger.warning(
            "webhook delivery %s attempt %d: %s%s (%s)",
            claimed.id,
            attempts,
            result.error,
            f" {result.status_code}" if result.status_code is not None else "",
            outcome,
        )


def _attempt(svc: Services, client: httpx.Client, claimed: _Claimed) -> _Result:
    if not claimed.enabled:
        return _Result(None, "disabled", retryable=False)
    parts = urlsplit(claimed.url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        if parts.scheme == "http" and svc.settings.multi_tenant and not svc.settings.webhooks.allow_http:
            return _Result(None, "host_refused", retryable=False)
        addresses = webhooks.check_host(svc, host, port)
    except PermissionDenied:
        return _Result(None, "host_refused", retryable=False)
    except InvalidInput:
        return _Result(None, "dns", retryable=True)
    try:
        plain = svc.keyring.decrypt(
            claimed.secret_ciphertext, aad=webhooks.secret_aad(claimed.tenant_id, claimed.webhook_id)
        ).decode("utf-8")
    except TsunamiError:
        logger.error("the secret of webhook %s cannot be decrypted", claimed.webhook_id)
        return _Result(None, "secret_unusable", retryable=False)
    body = claimed.payload.encode("utf-8")
    timestamp = int(time.time())
    address = addresses[0]
    pinned_host = f"[{address}]" if ":" in address else address
    netloc = pinned_host if parts.port is None else f"{pinned_host}:{parts.port}"
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    headers = {
        "Host": parts.netloc,
        "Content-Type": "application/json",
        "webhook-id": claimed.id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(plain, claimed.id, timestamp, body),
    }
    try:
        with client.stream("POST", pinned, content=body, headers=headers, extensions={"sni_hostname": host}) as answer:
            code = answer.status_code
            retry_after = _retry_after(answer.headers.get("retry-after"))
    except httpx.TimeoutException:
        return _Result(None, "timeout", retryable=True)
    except httpx.ConnectError:
        return _Result(None, "connect", retryable=True)
    except httpx.TransportError:
        return _Result(None, "network", retryable=True)
    if 200 <= code < 300:
        return _Result(code, None, retryable=False)
    if 300 <= code < 400:
        return _Result(code, "redirect", retryable=False)
    return _Result(code, "http_status", retryable=code in _RETRIED_STATUS, retry_after=retry_after)


def _backoff(svc: Services, attempts: int, retry_after: float | None) -> float:
    cfg = svc.settings.webhooks
    wait = min(cfg.backoff_seconds * 2 ** (attempts - 1), cfg.max_backoff_seconds)
    wait *= random.uniform(0.5, 1.0)  # jitter, so receivers that failed together are not hit together again
    if retry_after is not None:
        wait = max(wait, retry_after)
    return float(min(wait, cfg.max_backoff_seconds))


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    text = value.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _claimed(delivery: WebhookDelivery, hook: Webhook) -> _Claimed:
    return _Claimed(
        id=delivery.id,
        tenant_id=delivery.tenant_id,
        webhook_id=delivery.webhook_id,
        payload=delivery.payload,
        attempts=delivery.attempts,
        max_attempts=delivery.max_attempts,
        url=hook.url,
        enabled=hook.enabled,
        secret_ciphertext=hook.secret_ciphertext,
    )


def _client(svc: Services) -> httpx.Client:
    return httpx.Client(
        timeout=svc.settings.webhooks.timeout_seconds,
        follow_redirects=False,
        trust_env=False,  # a proxy from the environment would undo the pinned, vetted address
        headers={"User-Agent": f"servicetsunami-webhooks/{__version__}"},
    )


def _lease(svc: Services) -> float:
    return svc.settings.webhooks.timeout_seconds * 2 + 30


# -- the run kind -------------------------------------------------------------------------------


def _run(svc: Services, ctx: RunContext) -> dict[str, Any]:
    attempted = deliver_due(svc, stop=lambda: ctx.cancelled)
    return {"attempted": attempted, "forgotten": forget_old(svc)}


def forget_old(svc: Services, /) -> int:
    """Remove deliveries that ended more than ``webhooks.keep_days`` ago (each delivery run does,
    so the log is trimmed while events flow)."""
    before = utcnow() - timedelta(days=svc.settings.webhooks.keep_days)
    with svc.store.session() as session:
        return repo.forget_finished(session, finished_before=before)


def _tick(svc: Services) -> None:
    if has_due(svc):
        runs.submit_service_run(svc, KIND, params={}, dedupe_key=KIND)


register(
    RunKind(
        KIND,
        _run,
        requeue_when_lost=True,
        max_parallel=lambda settings: 1,
        ticker=_tick,
        ticker_seconds=lambda settings: settings.webhooks.poll_seconds,
    )
)
