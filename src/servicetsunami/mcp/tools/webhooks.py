"""``create_webhook``, ``list_webhooks``, ``delete_webhook``, ``test_webhook``,
``list_webhook_deliveries``: webhook subscriptions to run events (admins). The signing secret is
shown once, in ``create_webhook``'s answer."""

from __future__ import annotations

from typing import Annotated

from fastmcp import FastMCP
from fastmcp.tools.base import ToolResult
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from servicetsunami.mcp.auth import Caller
from servicetsunami.mcp.errors import call_service
from servicetsunami.mcp.results import output_schema, tool_result
from servicetsunami.services.container import Services
from servicetsunami.services.ops import webhook_delivery, webhooks
from servicetsunami.services.ops.webhooks import DeliveryPublic, WebhookPublic, WebhookWithSecret

_READ = ToolAnnotations(title="Webhooks", read_only_hint=True, open_world_hint=False)
_CREATE = ToolAnnotations(
    title="Create a webhook", read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
)
_DELETE = ToolAnnotations(
    title="Delete a webhook", read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False
)
_TEST = ToolAnnotations(
    title="Send a test event", read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
)
WebhookId = Annotated[str, Field(description="A webhook id, as create_webhook or list_webhooks returned it")]


class WebhookList(BaseModel):
    webhooks: list[WebhookPublic]


class DeliveryList(BaseModel):
    deliveries: list[DeliveryPublic]


class WebhookDeleted(BaseModel):
    webhook_id: str
    deleted: bool = True


def register(server: FastMCP, services: Services, caller: Caller) -> None:
    @server.tool(tags={"manage"}, annotations=_CREATE, output_schema=output_schema(WebhookWithSecret))
    async def create_webhook(
        url: Annotated[str, Field(max_length=2048, description="Where events are posted (https)")],
        events: Annotated[
            list[str],
            Field(min_length=1, max_length=50, description="e.g. job_run.failed, sync.*, *.failed, *"),
        ],
        description: Annotated[str, Field(max_length=500)] = "",
    ) -> ToolResult:
        """Post run events (<run kind>.<started|succeeded|failed|canceled|timed_out|skipped>) to a
        URL, signed per Standard Webhooks. The secret is shown only in this answer."""
        principal = caller.principal()
        return tool_result(
            await call_service(
                webhooks.create_webhook, services, principal, url=url, events=events, description=description
            )
        )

    @server.tool(tags={"manage"}, annotations=_READ, output_schema=output_schema(WebhookList))
    async def list_webhooks(limit: Annotated[int, Field(ge=1, le=200)] = 100) -> ToolResult:
        """Your tenant's webhooks (never their secrets)."""
        found = await call_service(webhooks.list_webhooks, services, caller.principal(), limit=limit)
        return tool_result(WebhookList(webhooks=found[:limit]))

    @server.tool(tags={"manage"}, annotations=_DELETE, output_schema=output_schema(WebhookDeleted))
    async def delete_webhook(webhook_id: WebhookId) -> ToolResult:
        """Delete a webhook; its deliveries not yet sent never will be."""
        await call_service(webhooks.delete_webhook, services, caller.principal(), webhook_id)
        return tool_result(WebhookDeleted(webhook_id=webhook_id))

    @server.tool(tags={"manage"}, annotations=_TEST, output_schema=output_schema(DeliveryPublic))
    async def test_webhook(webhook_id: WebhookId) -> ToolResult:
        """Send a webhook.ping event now and show how the receiver answered."""
        return tool_result(await call_service(webhook_delivery.test_webhook, services, caller.principal(), webhook_id))

    @server.tool(tags={"manage"}, annotations=_READ, output_schema=output_schema(DeliveryList))
    async def list_webhook_deliveries(
        webhook_id: WebhookId,
        status: Annotated[str | None, Field(description="pending, delivering, succeeded or failed")] = None,
        limit: Annotated[int, Field(ge=1, le=200)] = 50,
    ) -> ToolResult:
        """A webhook's deliveries, newest first, with each attempt's status code, duration, error."""
        found = await call_service(
            webhooks.list_deliveries, services, caller.principal(), webhook_id, status=status, limit=limit
        )
        return tool_result(DeliveryList(deliveries=found[:limit]))
