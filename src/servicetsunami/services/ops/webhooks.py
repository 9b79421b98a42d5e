"""Webhook subscriptions of a tenant (admins manage them): where run state changes are posted.

A subscription has a URL, the events it wants (``job_run.failed``, ``sync.*``, ``*.failed``, ``*``;
the event types are ``<run kind>.<event>``, events :data:`EVENTS`), a description, whether it is
enabled, and a signing secret in the Standard Webhooks form (``whsec_`` and base64 of 24 to 64
bytes). The service generates the secret (or takes one given), keeps it encrypted by the key ring
like connection credentials, and shows it once: in the answer to the creation and to a rotation.

The URL is checked like a source's host (:func:`servicetsunami.security.ssrf.check_source_host`):
metadata and link-local addresses always refused; in multi-tenant mode private networks too unless
``webhooks.allowed_networks`` holds them, and ``https`` only unless ``webhooks.allow_http``. It is
checked again at every delivery (:mod:`servicetsunami.services.ops.webhook_delivery`).
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets as _random
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from servicetsunami.errors import InvalidInput, LimitExceeded
from servicetsunami.security import secrets
from servicetsunami.security.ssrf import check_source_host
from servicetsunami.services.runs.kinds import registered
from servicetsunami.store.models import Webhook, WebhookDelivery, new_id
from servicetsunami.store.repositories import webhooks as repo
from servicetsunami.tenancy import Principal, Scope

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

logger = logging.getLogger(__name__)

EVENTS = repo.RUN_EVENTS
PING = repo.PING
SECRET_PREFIX = "whsec_"
# Runs of the service itself (no tenant): never the subject of a tenant's event.
_SERVICE_KINDS = frozenset({"mirror_replay", "webhook_delivery"})
_NETWORKS_SETTING = "TSUNAMI_WEBHOOKS__ALLOWED_NETWORKS"
_MAX_URL = 2048
_MAX_PATTERNS = 50


class WebhookPublic(BaseModel):
    """A webhook subscription as its tenant's admins see it (never its secret)."""

    id: str
    url: str
    events: list[str] = Field(description="Event patterns: <run kind>.<event>, * for a whole part")
    description: str
    enabled: bool
    created_by: str
    created_at: datetime
    updated_at: datetime


class WebhookWithSecret(WebhookPublic):
    """The answer to a creation or a rotation: the only time the secret is shown."""

    secret: str = Field(description="The signing secret (whsec_...): shown this once, keep it")


class DeliveryAttempt(BaseModel):
    at: datetime
    status_code: int | None = Field(None, description="The receiver's HTTP status; null when none came")
    duration_ms: float
    error: str | None = Field(
        None, description="timeout, connect, network, dns, host_refused, redirect, http_status, disabled"
    )


class DeliveryPublic(BaseModel):
    """One event sent (or to send) to one webhook, with each attempt."""

    id: str = Field(description="The webhook-id header: the same on every attempt")
    webhook_id: str
    event_type: str
    run_id: str | None = None
    status: str = Field(description="pending, delivering, succeeded or failed")
    attempts: int
    next_attempt_at: datetime | None = Field(None, description="When the next attempt is due (pending only)")
    last_status_code: int | None = None
    last_error: str | None = None
    created_at: datetime
    finished_at: datetime | None = None
    attempt_log: list[DeliveryAttempt] = Field(default_factory=list, description="Oldest first")


def known_event_types() -> list[str]:
    """Every event type a subscription may name (with the run kinds this service registers)."""
    kinds = sorted(k for k in registered() if k not in _SERVICE_KINDS)
    return [f"{kind}.{event}" for kind in kinds for event in EVENTS]


def create_webhook(
    svc: Services,
    principal: Principal,
    /,
    *,
    url: str,
    events: list[str],
    description: str = "",
    enabled: bool = True,
    secret: str | None = None,
) -> WebhookWithSecret:
    """A new subscription of the caller's tenant (admins); its secret generated unless given."""
    principal.require(Scope.MANAGE)
    url = check_url(svc, url)
    patterns = check_events(events)
    description = _check_description(description)
    plain = _check_secret(secret) if secret is not None else generate_secret()
    webhook_id = new_id()
    ciphertext, kid = _encrypt(svc, principal.tenant_id, webhook_id, plain)
    with svc.store.session(write_lock=True) as session:
        if repo.count_webhooks(session, tenant_id=principal.tenant_id) >= svc.settings.webhooks.max_per_tenant:
            raise LimitExceeded(
                f"a tenant may have {svc.settings.webhooks.max_per_tenant} webhooks; delete one first "
                "(the operator sets webhooks.max_per_tenant)"
            )
        row = repo.create_webhook(
            session,
            webhook_id=webhook_id,
            tenant_id=principal.tenant_id,
            url=url,
            events=patterns,
            description=description,
            enabled=enabled,
            secret_ciphertext=ciphertext,
            secret_kid=kid,
            created_by=principal.subject,
        )
        public = _public(row)
    logger.info("webhook created", extra={"webhook_id": webhook_id, "events": patterns})
    return WebhookWithSecret(**public.model_dump(), secret=plain)


def get_webhook(svc: Services, principal: Principal, webhook_id: str, /) -> WebhookPublic:
    principal.require(Scope.MANAGE)
    with svc.store.session() as session:
        return _public(repo.get_webhook(session, webhook_id, tenant_id=principal.tenant_id))


def list_webhooks(
    svc: Services, principal: Principal, /, *, after: tuple[datetime, str] | None = None, limit: int = 100
) -> list[WebhookPublic]:
    """The tenant's subscriptions, oldest first; up to ``limit + 1`` (the extra says a page follows)."""
    principal.require(Scope.MANAGE)
    with svc.store.session() as session:
        rows = repo.list_webhooks(session, tenant_id=principal.tenant_id, after=after, limit=limit)
        return [_public(row) for row in rows]


def update_webhook(
    svc: Services,
    principal: Principal,
    webhook_id: str,
    /,
    *,
    url: str | None = None,
    events: list[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
) -> WebhookPublic:
    """Change what is given (None leaves a field as it is)."""
    principal.require(Scope.MANAGE)
    checked_url = check_url(svc, url) if url is not None else None
    patterns = check_events(events) if events is not None else None
    with svc.store.session(write_lock=True) as session:
        row = repo.get_webhook(session, webhook_id, tenant_id=principal.tenant_id)
        if checked_url is not None:
            row.url = checked_url
        if patterns is not None:
            row.events = patterns
        if description is not None:
            row.description = _check_description(description)
        if enabled is not None:
            row.enabled = enabled
        session.flush()
        return _public(row)


def delete_webhook(svc: Services, principal: Principal, webhook_id: str, /) -> None:
    """Remove the subscription and its deliveries (those not yet sent never will be)."""
    principal.require(Scope.MANAGE)
    with svc.store.session(write_lock=True) as session:
        repo.delete_webhook(session, webhook_id, tenant_id=principal.tenant_id)
    logger.info("webhook deleted", extra={"webhook_id": webhook_id})


def rotate_secret(
    svc: Services, principal: Principal, webhook_id: str, /, *, secret: str | None = None
) -> WebhookWithSecret:
    """A new signing secret (generated unless given), shown this once; the old one stops at once."""
    principal.require(Scope.MANAGE)
    plain = _check_secret(secret) if secret is not None else generate_secret()
    ciphertext, kid = _encrypt(svc, principal.tenant_id, webhook_id, plain)
    with svc.store.session(write_lock=True) as session:
        row = repo.get_webhook(session, webhook_id, tenant_id=principal.tenant_id)
        row.secret_ciphertext = ciphertext
        row.secret_kid = kid
        session.flush()
        public = _public(row)
    logger.info("webhook secret rotated", extra={"webhook_id": webhook_id})
    return WebhookWithSecret(**public.model_dump(), secret=plain)


def list_deliveries(
    svc: Services,
    principal: Principal,
    webhook_id: str,
    /,
    *,
    status: str | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> list[DeliveryPublic]:
    """The subscription's deliveries with their attempts, newest first; up to ``limit + 1``."""
    principal.require(Scope.MANAGE)
    if status is not None and status not in ("pending", "delivering", "succeeded", "failed"):
        raise InvalidInput("status must be one of pending, delivering, succeeded, failed")
    with svc.store.session() as session:
        rows = repo.list_deliveries(
            session, webhook_id, tenant_id=principal.tenant_id, status=status, after=after, limit=limit
        )
        return [delivery_public(row) for row in rows]


# -- checks -------------------------------------------------------------------------------------


def check_url(svc: Services, url: str, /) -> str:
    """``url`` if a webhook may post to it now (see the module docstring); resolves its host."""
    settings = svc.settings
    url = url.strip()
    if not url or len(url) > _MAX_URL:
        raise InvalidInput(f"url must be an http(s) URL of at most {_MAX_URL} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidInput("url is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("url must be an http(s) URL with a host, like https://hooks.example.com/tsunami")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("url must not carry credentials; the signature authenticates each delivery")
    if parts.fragment:
        raise InvalidInput("url must not have a #fragment")
    if parts.scheme == "http" and settings.multi_tenant and not settings.webhooks.allow_http:
        raise InvalidInput("webhook URLs must use https on this server (the operator may set webhooks.allow_http)")
    check_host(svc, parts.hostname, port or (443 if parts.scheme == "https" else 80))
    return url


def check_host(svc: Services, host: str, port: int, /) -> list[str]:
    """The addresses of ``host`` if a webhook may reach all of them (else PermissionDenied)."""
    return check_source_host(
        host,
        port,
        multi_tenant=svc.settings.multi_tenant,
        allowed_networks=svc.settings.webhooks.allowed_networks,
        who="webhooks",
        setting=_NETWORKS_SETTING,
    )


def check_events(events: list[str], /) -> list[str]:
    """The patterns, stripped and without duplicates; InvalidInput for one that names no event."""
    if not events:
        raise InvalidInput("events must name at least one event, e.g. job_run.failed, sync.*, *.failed or *")
    if len(events) > _MAX_PATTERNS:
        raise InvalidInput(f"events may hold at most {_MAX_PATTERNS} patterns")
    kinds = {k for k in registered() if k not in _SERVICE_KINDS}
    checked: list[str] = []
    for raw in events:
        pattern = raw.strip()
        if pattern != "*":
            kind, dot, event = pattern.partition(".")
            if not dot or (kind != "*" and kind not in kinds) or (event != "*" and event not in EVENTS):
                raise InvalidInput(
                    f"unknown event {pattern!r}: use <run kind>.<event> with a run kind of "
                    f"{', '.join(sorted(kinds))} (or *) and an event of {', '.join(EVENTS)} (or *)"
                )
        if pattern not in checked:
            checked.append(pattern)
    return checked


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(_random.token_bytes(32)).decode("ascii")


def signing_key(secret: str, /) -> bytes:
    """The HMAC key of a ``whsec_`` secret (the bytes its base64 stands for)."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)


def _check_secret(secret: str) -> str:
    secret = secret.strip()
    try:
        key = signing_key(secret) if secret.startswith(SECRET_PREFIX) else b""
    except (binascii.Error, ValueError):
        key = b""
    if not 24 <= len(key) <= 64:
        raise InvalidInput("a secret must be whsec_ followed by base64 of 24 to 64 random bytes (or leave it out)")
    return secret


def _check_description(description: str) -> str:
    if len(description) > 500:
        raise InvalidInput("description must be at most 500 characters")
    return description


def secret_aad(tenant_id: str, webhook_id: str, /) -> bytes:
    """The associated data binding a webhook's secret to its tenant and its row."""
    return secrets.webhook_secret_aad(tenant_id, webhook_id)


def _encrypt(svc: Services, tenant_id: str, webhook_id: str, plain: str) -> tuple[bytes, str]:
    ciphertext = svc.keyring.encrypt(plain.encode("utf-8"), aad=secret_aad(tenant_id, webhook_id))
    return ciphertext, secrets.kid_of(ciphertext)


def _public(row: Webhook) -> WebhookPublic:
    return WebhookPublic(
        id=row.id,
        url=row.url,
        events=list(row.events or []),
        description=row.description,
        enabled=row.enabled,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def delivery_public(row: WebhookDelivery, /) -> DeliveryPublic:
    log: list[dict[str, Any]] = list(row.attempt_log or [])
    return DeliveryPublic(
        id=row.id,
        webhook_id=row.webhook_id,
        event_type=row.event_type,
        run_id=row.run_id,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=row.created_at,
        finished_at=row.finished_at,
        attempt_log=[DeliveryAttempt.model_validate(item) for item in log],
    )
