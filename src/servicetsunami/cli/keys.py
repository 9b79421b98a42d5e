"""``tsunami keys``: create, list and revoke a tenant's API keys (operator)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from servicetsunami.cli.common import console, open_services, print_json_rows

app = typer.Typer(help="Manage API keys (operator).", no_args_is_help=True)


@app.command("create")
def keys_create(
    tenant: Annotated[str | None, typer.Option(help="Tenant slug (default: the default tenant)")] = None,
    name: Annotated[str, typer.Option(help="What the key is for")] = "cli",
    role: Annotated[str, typer.Option(help="admin | engineer | analyst")] = "analyst",
    preset: Annotated[
        str | None, typer.Option(help="MCP tools the key sees: minimal | analyst | engineer | admin")
    ] = None,
    tools: Annotated[
        str | None, typer.Option(help="MCP tools the key sees, comma-separated (besides the preset's)")
    ] = None,
) -> None:
    """Create an API key. The key is shown once; only its hash is stored."""
    from servicetsunami.services.identity import tenants

    names = [t.strip() for t in tools.split(",") if t.strip()] if tools else None
    with open_services() as svc:
        slug = tenant or svc.settings.default_tenant
        key = tenants.create_api_key(svc.store, tenant_slug=slug, name=name, role=role, tool_preset=preset, tools=names)
    console.print(f"{key.role} key for tenant {slug} (id {key.id}), shown once:")
    # Plain print: the key alone on its line, without rich's wrapping, so scripts can capture it.
    print(key.plaintext)


@app.command("list")
def keys_list(
    tenant: Annotated[str | None, typer.Option(help="Tenant slug (default: the default tenant)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List a tenant's API keys (prefixes only)."""
    from servicetsunami.services.identity import tenants

    with open_services() as svc:
        slug = tenant or svc.settings.default_tenant
        rows = tenants.list_api_keys(svc.store, tenant_slug=slug)
    if as_json:
        print_json_rows(rows)
        return
    table = Table("id", "prefix", "name", "role", "tools", "created", "last used", "revoked")
    for r in rows:
        tools = ", ".join(filter(None, [r.tool_preset and f"preset {r.tool_preset}", *(r.tools or [])])) or "-"
        table.add_row(
            r.id,
            r.prefix,
            r.name,
            r.role,
            tools,
            str(r.created_at),
            str(r.last_used_at or "-"),
            str(r.revoked_at or "-"),
        )
    console.print(table)


@app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="Key id or prefix")],
    tenant: Annotated[str | None, typer.Option(help="Tenant slug (default: the default tenant)")] = None,
) -> None:
    """Revoke an API key; it stops working at once."""
    from servicetsunami.services.identity import tenants

    with open_services() as svc:
        slug = tenant or svc.settings.default_tenant
        revoked = tenants.revoke_api_key(svc.store, tenant_slug=slug, key_id_or_prefix=key)
    console.print(f"revoked key {revoked.prefix} ({revoked.name})")
