"""``tsunami connections``: create, list and test source connections as the principal of ``TSUNAMI_API_KEY``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from servicetsunami.cli.common import console, id_column, key_principal, open_services

app = typer.Typer(help="Data source connections (as the principal of TSUNAMI_API_KEY).", no_args_is_help=True)


@app.command("create")
def connections_create(
    name: Annotated[str, typer.Argument(help="Short name for the connection")],
    host: Annotated[str, typer.Option(help="PostgreSQL host")],
    database: Annotated[str, typer.Option(help="Database name")],
    user: Annotated[str, typer.Option(help="User name")],
    port: Annotated[int, typer.Option(help="Port")] = 5432,
    sslmode: Annotated[
        str, typer.Option(help="disable | allow | prefer | require | verify-ca | verify-full")
    ] = "prefer",
    schema: Annotated[list[str] | None, typer.Option(help="Schema to offer (repeat for more)")] = None,
    no_password: Annotated[bool, typer.Option("--no-password", help="The server needs no password")] = False,
) -> None:
    """Store an encrypted PostgreSQL connection; the password is prompted for, never an argument."""
    from servicetsunami.services.ingestion.connections import connect_postgres

    password = None if no_password else typer.prompt("password", hide_input=True)
    with open_services() as svc:
        created = connect_postgres(
            svc,
            key_principal(svc),
            name=name,
            host=host,
            port=port,
            database=database,
            user=user,
            password=password,
            sslmode=sslmode,
            schemas=schema or None,
        )
    test = created.test
    state = (
        f"[green]ok[/green] {test.server_version} in {test.latency_ms:.0f} ms"
        if test.ok
        else (f"[red]{test.problem}[/red]: {test.diagnosis}")
    )
    console.print(f"connection {created.name} ({created.id}): {state}")


@app.command("list")
def connections_list() -> None:
    """List your connections (never their secrets)."""
    from servicetsunami.services.ingestion.connections import list_connections

    with open_services() as svc:
        rows = list_connections(svc, key_principal(svc))
    table = Table(id_column("id", (r.id for r in rows)), "name", "kind", "where", "last test")
    for r in rows:
        last = "-" if r.last_test_ok is None else ("ok" if r.last_test_ok else f"failed: {r.last_test_detail}")
        c = r.config
        where = (
            f"{c['host']}:{c.get('port')}/{c.get('database')}"
            if "host" in c
            else str(c.get("base_url") or c.get("path") or "-")
        )
        table.add_row(r.id, r.name, r.kind, where, last)
    console.print(table)


@app.command("test")
def connections_test(connection_id: Annotated[str, typer.Argument(help="Connection id")]) -> None:
    """Connect and report latency, version, or a diagnosis."""
    from servicetsunami.services.ingestion.connections import test_connection

    with open_services() as svc:
        result = test_connection(svc, key_principal(svc), connection_id)
    console.print_json(result.model_dump_json())
    if not result.ok:
        raise typer.Exit(1)


@app.command("kinds")
def connections_kinds() -> None:
    """The kinds of source that can be connected, with their settings and which are secret."""
    from servicetsunami.services.ingestion.connections import list_source_kinds

    with open_services() as svc:
        kinds = list_source_kinds(svc, key_principal(svc))
    table = Table("kind", "settings", "secrets (prompted)", "description")
    for k in kinds:
        settings = [name for name in k.config_schema.get("properties", {}) if name not in k.secrets]
        table.add_row(k.kind, ", ".join(settings), ", ".join(k.secrets) or "-", k.description)
    console.print(table)


@app.command("connect")
def connections_connect(
    kind: Annotated[str, typer.Argument(help="A kind of `tsunami connections kinds`, e.g. mysql")],
    name: Annotated[str, typer.Argument(help="Short name for the connection")],
    setting: Annotated[
        list[str] | None,
        typer.Option("--set", help="A setting as key=value (repeat); lists and objects in JSON"),
    ] = None,
    secret: Annotated[
        list[str] | None,
        typer.Option("--secret", help="A secret setting to prompt for (repeat); default: the kind's only secret"),
    ] = None,
    secret_file: Annotated[
        list[str] | None,
        typer.Option(
            "--secret-file",
            help="A secret setting read from a file, as name=path (repeat), e.g. service_account_key=key.json",
        ),
    ] = None,
    no_secret: Annotated[bool, typer.Option("--no-secret", help="The source needs no secret")] = False,
) -> None:
    """Store an encrypted connection of any kind; its secrets are prompted for or read from files,
    never arguments."""
    import json

    from servicetsunami.services.ingestion.connections import connect_source, list_source_kinds

    config: dict[str, object] = {}
    for item in setting or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not key=value", param_hint="--set")
        # lists and objects as JSON; the rest as text, which the kind's settings convert (port=3306)
        try:
            config[key] = json.loads(raw) if raw[:1] in ("[", "{") else raw
        except ValueError:
            raise typer.BadParameter(f"{key}: {raw!r} is not valid JSON", param_hint="--set") from None
    from_files: dict[str, str] = {}
    for item in secret_file or []:
        key, sep, path = item.partition("=")
        if not sep or not key or not path:
            raise typer.BadParameter(f"{item!r} is not name=path", param_hint="--secret-file")
        try:
            from_files[key] = Path(path).expanduser().read_text().strip()
        except OSError as exc:
            raise typer.BadParameter(
                f"{key}: the file cannot be read ({exc.strerror})", param_hint="--secret-file"
            ) from None
    with open_services() as svc:
        principal = key_principal(svc)
        entry = next((k for k in list_source_kinds(svc, principal) if k.kind == kind), None)
        default = [] if no_secret or from_files or entry is None or len(entry.secrets) != 1 else entry.secrets
        asked = [name for name in (secret or default) if name not in from_files]
        secrets = {**from_files, **{name: typer.prompt(name, hide_input=True) for name in asked}}
        created = connect_source(svc, principal, kind=kind, name=name, config=config, secrets=secrets)
    test = created.test
    state = (
        f"[green]ok[/green] {test.server_version} in {test.latency_ms:.0f} ms"
        if test.ok
        else (f"[red]{test.problem}[/red]: {test.diagnosis}")
    )
    console.print(f"connection {created.name} ({created.id}): {state}")
