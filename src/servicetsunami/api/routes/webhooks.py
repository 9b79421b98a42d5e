"""Webhook subscriptions of the caller's tenant (admins): CRUD, a test event, the delivery log and
the rotation of the signing secret (shown only in the answers to a creation and a rotation)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from servicetsunami.api.deps import PageDep, PrincipalDep, ServicesDep
from servicetsunami.api.pagination import Page, cursor_key, page_of, timestamp
from servicetsunami.api.schemas.common import COMMON_ERRORS
from servicetsunami.api.schemas.webhooks import (
    DeliveryPublic,
    SecretRotate,
    WebhookCreate,
    WebhookPublic,
    WebhookUpdate,
    WebhookWithSecret,
)
from servicetsunami.services.ops import webhook_delivery, webhooks

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


@router.post(
    "", operation_id="create_webhook", status_code=201, response_model=WebhookWithSecret, responses=COMMON_ERRORS
)
async def create_webhook(body: WebhookCreate, services: ServicesDep, principal: PrincipalDep) -> WebhookWithSecret:
    """Subscribe a URL to run events. The signing secret is in this answer only."""
    return await run_in_threadpool(
        lambda: webhooks.create_webhook(
            services,
            principal,
            url=body.url,
            events=body.events,
            description=body.description,
            enabled=body.enabled,
            secret=body.secret,
        )
    )


@router.get("", operation_id="list_webhooks", response_model=Page[WebhookPublic], responses=COMMON_ERRORS)
async def list_webhooks(services: ServicesDep, principal: PrincipalDep, page: PageDep) -> Page[WebhookPublic]:
    after = cursor_key(page.cursor, timestamp, str)
    found = await run_in_threadpool(lambda: webhooks.list_webhooks(services, principal, after=after, limit=page.limit))
    return page_of(found, key=lambda w: (w.created_at.isoformat(), w.id), limit=page.limit)


@router.get("/{webhook_id}", operation_id="get_webhook", response_model=WebhookPublic, responses=COMMON_ERRORS)
async def get_webhook(webhook_id: str, services: ServicesDep, principal: PrincipalDep) -> WebhookPublic:
    return await run_in_threadpool(webhooks.get_webhook, services, principal, webhook_id)


@router.patch("/{webhook_id}", operation_id="update_webhook", response_model=WebhookPublic, responses=COMMON_ERRORS)
async def update_webhook(
    webhook_id: str, body: WebhookUpdate, services: ServicesDep, principal: PrincipalDep
) -> WebhookPublic:
    """Change the URL, events, description or whether it is enabled (fields left out stay)."""
    return await run_in_threadpool(
        lambda: webhooks.update_webhook(
            services,
            principal,
            webhook_id,
            url=body.url,
            events=body.events,
            description=body.description,
            enabled=body.enabled,
        )
    )


@router.delete("/{webhook_id}", operation_id="delete_webhook", status_code=204, responses=COMMON_ERRORS)
async def delete_webhook(webhook_id: str, services: ServicesDep, principal: PrincipalDep) -> Response:
    """Remove the subscription; its deliveries not yet sent never will be."""
    await run_in_threadpool(webhooks.delete_webhook, services, principal, webhook_id)
    return Response(status_code=204)


@router.post("/{webhook_id}/test", operation_id="test_webhook", response_model=DeliveryPublic, responses=COMMON_ERRORS)
async def test_webhook(webhook_id: str, services: ServicesDep, principal: PrincipalDep) -> DeliveryPublic:
    """Send a webhook.ping event now; the answer is its delivery (one attempt: status code, error)."""
    return await run_in_threadpool(webhook_delivery.test_webhook, services, principal, webhook_id)


@router.get(
    "/{webhook_id}/deliveries",
    operation_id="list_webhook_deliveries",
    response_model=Page[DeliveryPublic],
    responses=COMMON_ERRORS,
)
async def list_deliveries(
    webhook_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    page: PageDep,
    status: Annotated[str | None, Query(max_length=16, description="pending, delivering, succeeded or failed")] = None,
) -> Page[DeliveryPublic]:
    """The subscription's deliveries, newest first, each with its attempts."""
    after = cursor_key(page.cursor, timestamp, str)
    found = await run_in_threadpool(
        lambda: webhooks.list_deliveries(services, principal, webhook_id, status=status, after=after, limit=page.limit)
    )
    return page_of(found, key=lambda d: (d.created_at.isoformat(), d.id), limit=page.limit)


@router.post(
    "/{webhook_id}/rotate-secret",
    operation_id="rotate_webhook_secret",
    response_model=WebhookWithSecret,
    responses=COMMON_ERRORS,
)
async def rotate_secret(
    webhook_id: str, services: ServicesDep, principal: PrincipalDep, body: SecretRotate | None = None
) -> WebhookWithSecret:
    """A new signing secret, in this answer only; the old one stops signing at once."""
    secret = body.secret if body is not None else None
    return await run_in_threadpool(lambda: webhooks.rotate_secret(services, principal, webhook_id, secret=secret))
