"""``tsunami webhooks``: a tenant's webhook subscriptions to run events, as the principal of
``TSUNAMI_API_KEY`` (an admin): list, create (the secret is printed once), delete, test (send a ping
now), deliveries (the delivery log with each attempt)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from servicetsunami.cli.common import console, id_column, key_principal, open_services, print_json_rows

app = typer.Typer(help="Webhooks: run events posted to your URLs, signed.", no_args_is_help=True)


@app.command("list")
def webhooks_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Your tenant's webhooks (never their secrets)."""
    from servicetsunami.services.ops import webhooks

    with open_services() as svc:
        found = webhooks.list_webhooks(svc, key_principal(svc), limit=500)[:500]
    if as_json:
        print_json_rows(found)
        return
    table = Table(id_column("id", (h.id for h in found)), "url", "events", "enabled", "description")
    for hook in found:
        table.add_row(hook.id, hook.url, ", ".join(hook.events), "yes" if hook.enabled else "no", hook.description)
    console.print(table)


@app.command("create")
def webhooks_create(
    url: Annotated[str, typer.Argument(help="Where events are posted (https)")],
    events: Annotated[
        str, typer.Option(help="Event patterns, comma-separated: job_run.failed, sync.*, *.failed, *")
    ] = "*.failed",
    description: Annotated[str, typer.Option(help="What the webhook is for")] = "",
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it turned off")] = False,
) -> None:
    """Create a webhook. Its signing secret is printed once, alone on the last line."""
    from servicetsunami.services.ops import webhooks

    patterns = [e.strip() for e in events.split(",") if e.strip()]
    with open_services() as svc:
        created = webhooks.create_webhook(
            svc, key_principal(svc), url=url, events=patterns, description=description, enabled=not disabled
        )
    console.print(f"webhook {created.id} for {', '.join(created.events)}; its signing secret, shown once:")
    print(created.secret)  # plain print: alone on its line, unwrapped, for scripts


@app.command("delete")
def webhooks_delete(webhook_id: Annotated[str, typer.Argument(help="Webhook id")]) -> None:
    """Delete a webhook; its deliveries not yet sent never will be."""
    from servicetsunami.services.ops import webhooks

    with open_services() as svc:
        webhooks.delete_webhook(svc, key_principal(svc), webhook_id)
    console.print(f"deleted webhook {webhook_id}")


@app.command("test")
def webhooks_test(webhook_id: Annotated[str, typer.Argument(help="Webhook id")]) -> None:
    """Send a webhook.ping event now and show the receiver's answer. Exits 1 if it was not delivered."""
    from servicetsunami.services.ops import webhook_delivery

    with open_services() as svc:
        delivery = webhook_delivery.test_webhook(svc, key_principal(svc), webhook_id)
    console.print_json(delivery.model_dump_json())
    if delivery.status != "succeeded":
        raise typer.Exit(1)


@app.command("deliveries")
def webhooks_deliveries(
    webhook_id: Annotated[str, typer.Argument(help="Webhook id")],
    status: Annotated[str | None, typer.Option(help="pending | delivering | succeeded | failed")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Most deliveries shown, newest first")] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A webhook's deliveries, newest first, with their attempts."""
    from servicetsunami.services.ops import webhooks

    with open_services() as svc:
        found = webhooks.list_deliveries(svc, key_principal(svc), webhook_id, status=status, limit=limit)[:limit]
    if as_json:
        print_json_rows(found)
        return
    table = Table("delivery", "event", "status", "attempts", "last status", "last error", "created")
    for d in found:
        code = str(d.last_status_code) if d.last_status_code is not None else ""
        created = d.created_at.isoformat(timespec="seconds")
        table.add_row(d.id, d.event_type, d.status, str(d.attempts), code, d.last_error or "", created)
    console.print(table)
