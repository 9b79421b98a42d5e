"""``tsunami users``: create users who log in to the REST API (operator)."""

from __future__ import annotations

import getpass
import sys
import warnings
from typing import Annotated

import typer

from servicetsunami.cli.common import console, open_services

app = typer.Typer(help="Manage users who log in to the REST API (operator).", no_args_is_help=True)


@app.command("create")
def users_create(
    email: Annotated[str, typer.Argument(help="The user's e-mail address (their login)")],
    tenant: Annotated[
        str | None, typer.Option(help="Tenant slug (default: the default tenant, created if missing)")
    ] = None,
    role: Annotated[str, typer.Option(help="admin | engineer | analyst")] = "admin",
    name: Annotated[str, typer.Option(help="Display name")] = "",
    platform_admin: Annotated[bool, typer.Option(help="May create tenants (POST /api/v1/tenants)")] = False,
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input (scripts)")] = False,
) -> None:
    """Create a user. The password is prompted for (never an argument); only its argon2 hash is kept."""
    from servicetsunami.services.identity import users

    with open_services() as svc:
        password = sys.stdin.readline().rstrip("\r\n") if password_stdin else _prompted_password()
        slug = tenant or svc.settings.default_tenant
        if tenant is None:
            users.ensure_tenant(svc, slug)
        user = users.create_user(
            svc, tenant_slug=slug, email=email, password=password, role=role, name=name,
            is_platform_admin=platform_admin,
        )  # fmt: skip
    console.print(f"created {user.role} user {user.email} in tenant {user.tenant_slug} (id {user.id})", soft_wrap=True)


def _prompted_password() -> str:
    """The password typed twice on the terminal; without a terminal, a usage error naming
    ``--password-stdin`` (getpass would warn that it cannot hide the input, then read a pipe or fail)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", getpass.GetPassWarning)
        try:
            return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
        except getpass.GetPassWarning:
            typer.echo()  # ends the "Password:" line
            raise typer.BadParameter(
                "there is no terminal to type it on; pipe it in with --password-stdin, "
                "e.g. printf '%s\\n' \"$PASSWORD\" | tsunami users create ... --password-stdin",
                param_hint="the password",
            ) from None
