"""Webhook subscriptions: what a creation, an update and a rotation take (the answers are the
service's shapes)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from servicetsunami.services.ops.webhooks import DeliveryPublic, WebhookPublic, WebhookWithSecret

__all__ = ["DeliveryPublic", "SecretRotate", "WebhookCreate", "WebhookPublic", "WebhookUpdate", "WebhookWithSecret"]

_EVENTS = "Event patterns: <run kind>.<event> (job_run.failed, sync.succeeded), sync.*, *.failed or *"


class WebhookCreate(BaseModel):
    url: str = Field(min_length=1, max_length=2048, description="Where events are posted (https)")
    events: list[str] = Field(min_length=1, max_length=50, description=_EVENTS)
    description: str = Field("", max_length=500)
    enabled: bool = True
    secret: str | None = Field(
        None, description="A signing secret of your own (whsec_ + base64 of 24-64 bytes); generated when left out"
    )


class WebhookUpdate(BaseModel):
    url: str | None = Field(None, min_length=1, max_length=2048)
    events: list[str] | None = Field(None, min_length=1, max_length=50, description=_EVENTS)
    description: str | None = Field(None, max_length=500)
    enabled: bool | None = None


class SecretRotate(BaseModel):
    secret: str | None = Field(None, description="The new secret (whsec_ + base64); generated when left out")
