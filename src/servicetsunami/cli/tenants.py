"""``tsunami tenants``: create and list tenants on this machine's system store (operator)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from servicetsunami.cli.common import console, open_services, print_json_rows

app = typer.Typer(help="Manage tenants (operator).", no_args_is_help=True)


@app.command("create")
def tenants_create(
    slug: Annotated[str, typer.Argument(help="Short name: lower-case letters, digits, underscores")],
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
    admin_key: Annotated[bool, typer.Option(help="Also create an admin API key and show it once")] = True,
) -> None:
    """Create a tenant (and its lakehouse catalog)."""
    from servicetsunami.services.identity import tenants

    with open_services() as svc:
        tenant = tenants.create_tenant(svc.store, slug, name=name)
        svc.engine.ensure_catalog(svc.settings.catalog_prefix + tenant.slug)
        console.print(f"created tenant {tenant.slug} (catalog {svc.settings.catalog_prefix}{tenant.slug})")
        if admin_key:
            key = tenants.create_api_key(svc.store, tenant_slug=slug, name="admin", role="admin")
            console.print(f"admin API key (shown once): {key.plaintext}")


@app.command("list")
def tenants_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List tenants."""
    from servicetsunami.services.identity import tenants

    with open_services() as svc:
        rows = tenants.list_tenants(svc.store)
    if as_json:
        print_json_rows(rows)
        return
    table = Table("slug", "name", "created")
    for r in rows:
        table.add_row(r.slug, r.name, str(r.created_at))
    console.print(table)
