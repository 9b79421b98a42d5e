"""The ``tsunami`` command.

``serve`` runs every door in one process; ``mcp`` speaks MCP over stdio for Claude Desktop.
``tenants`` and ``keys`` are operator commands: they act on the system store of this machine
directly. ``query``, ``upload`` and ``tables`` act as the principal of ``TSUNAMI_API_KEY``.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from servicetsunami.errors import AuthError, InvalidInput, TsunamiError
from servicetsunami.logs import configure_logging
from servicetsunami.settings import Settings

if TYPE_CHECKING:
    from servicetsunami.services.container import Services
    from servicetsunami.tenancy import Principal

app = typer.Typer(help="ServiceTsunami: the integration brain for data and AI agents.", no_args_is_help=True)
tenants_app = typer.Typer(help="Manage tenants (operator).", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys (operator).", no_args_is_help=True)
connections_app = typer.Typer(
    help="Data source connections (as the principal of TSUNAMI_API_KEY).", no_args_is_help=True
)
users_app = typer.Typer(help="Manage users who log in to the REST API (operator).", no_args_is_help=True)
secrets_app = typer.Typer(help="The master key ring for stored secrets (operator).", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")
app.add_typer(keys_app, name="keys")
app.add_typer(connections_app, name="connections")
app.add_typer(secrets_app, name="secrets")
mirror_app = typer.Typer(
    help="The outbox of writes copied to the mirror engine (TSUNAMI_MIRROR).", no_args_is_help=True
)
app.add_typer(mirror_app, name="mirror")
app.add_typer(users_app, name="users")
console = Console()
err = Console(stderr=True)


@contextmanager
def _services(settings: Settings | None = None) -> Iterator[Services]:
    from servicetsunami.services.container import Services

    svc = Services.open(settings or Settings())
    try:
        yield svc
    except TsunamiError as exc:
        err.print(f"[red]error[/red] ({exc.code}): {exc.message}")
        raise typer.Exit(2) from None
    finally:
        svc.close()


def _principal(svc: Services) -> Principal:
    key = svc.settings.api_key
    if not key:
        raise AuthError("set TSUNAMI_API_KEY to an API key (create one with `tsunami keys create`)")
    return svc.authenticate(key)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default from TSUNAMI_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from TSUNAMI_PORT)")] = None,
    workers: Annotated[
        int | None, typer.Option(min=0, help="Worker processes (default TSUNAMI_SERVE__WORKERS; 0: one per core, <= 4)")
    ] = None,
) -> None:
    """Run REST (/api/v1), MCP (/mcp), OpenAPI (/docs) and health (/health) on one port."""
    import uvicorn

    from servicetsunami.api.app import create_app
    from servicetsunami.mcp.server import use_service_logging
    from servicetsunami.services.container import Services
    from servicetsunami.services.identity import tenants
    from servicetsunami.services.runs import service as runs

    overrides: dict[str, Any] = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    if workers is not None:
        overrides["serve"] = {**Settings().serve.model_dump(), "workers": workers}
    settings = Settings(**overrides)
    configure_logging(settings.log_level)
    use_service_logging()
    services = Services.open(settings)
    created = tenants.bootstrap_service(services)
    base = settings.resolved_public_url
    console.print(f"[bold]ServiceTsunami[/bold] on the {services.engine.kind} engine, data in {settings.resolved_home}")
    console.print(f"  MCP (streamable HTTP): {base}/mcp")
    console.print(f"  REST API:              {base}/api/v1")
    console.print(f"  API docs:              {base}/docs")
    console.print(f"  Health:                {base}/health")
    processes = settings.serve.resolved_workers
    console.print(f"  Workers:               {processes} process{'es' if processes > 1 else ''}")
    if services.mirror is not None:
        console.print(f"  Mirror:                every write copied to {settings.mirror} (see /health)")
    if created is not None:
        console.print(
            f"\n[bold yellow]First start:[/bold yellow] tenant '{created.tenant_slug}' with admin API key\n\n"
            f"    {created.plaintext}\n\nIt is shown only this once; store it now (e.g. TSUNAMI_API_KEY)."
        )
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "proxy_headers": False,
        "timeout_keep_alive": settings.serve.keep_alive_seconds,
    }
    try:
        if processes == 1:
            runs.ensure_worker(services)  # with several processes, each worker's app starts its own
            uvicorn.run(create_app(settings, services=services), **options)
        else:
            # Each worker builds its own app from the environment: hand it what the options said.
            os.environ.update({"TSUNAMI_HOST": settings.host, "TSUNAMI_PORT": str(settings.port)})
            uvicorn.run("servicetsunami.api.app:worker_app", factory=True, workers=processes, **options)
    finally:
        services.close()


@app.command()
def mcp() -> None:
    """Speak MCP over stdio (for Claude Desktop). The principal comes from TSUNAMI_API_KEY."""
    from servicetsunami.mcp.stdio import run_stdio

    run_stdio(Settings())


@tenants_app.command("create")
def tenants_create(
    slug: Annotated[str, typer.Argument(help="Short name: lower-case letters, digits, underscores")],
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
    admin_key: Annotated[bool, typer.Option(help="Also create an admin API key and show it once")] = True,
) -> None:
    """Create a tenant (and its lakehouse catalog)."""
    from servicetsunami.services.identity import tenants

    with _services() as svc:
        tenant = tenants.create_tenant(svc.store, slug, name=name)
        svc.engine.ensure_catalog(svc.settings.catalog_prefix + tenant.slug)
        console.print(f"created tenant {tenant.slug} (catalog {svc.settings.catalog_prefix}{tenant.slug})")
        if admin_key:
            key = tenants.create_api_key(svc.store, tenant_slug=slug, name="admin", role="admin")
            console.print(f"admin API key (shown once): {key.plaintext}")


@tenants_app.command("list")
def tenants_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List tenants."""
    from servicetsunami.services.identity import tenants

    with _services() as svc:
        rows = tenants.list_tenants(svc.store)
    if as_json:
        console.print_json(json.dumps([r.model_dump(mode="json") for r in rows]))
        return
    table = Table("slug", "name", "created")
    for r in rows:
        table.add_row(r.slug, r.name, str(r.created_at))
    console.print(table)


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str | None, typer.Option(help="Tenant slug (default: the default tenant)")] = None,
    name: Annotated[str, typer.Option(help="What the key is for")] = "cli",
    role: Annotated[str, typer.Option(help="admin | engineer | analyst")] = "analyst",
) -> None:
    """Create an API key. The key is shown once; only its hash is stored."""
    from servicetsunami.services.identity import tenants

    with _services() as svc:
        slug = tenant or svc.settings.default_tenant
        key = tenants.create_api_key(svc.store, tenant_slug=slug, name=name, role=role)
    console.print(f"{key.role} key for tenant {slug} (id {key.id}), shown once:")
    print(key.plaintext)


@users_app.command("create")
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

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with _services() as svc:
        slug = tenant or svc.settings.default_tenant
        if tenant is None:
            users.ensure_tenant(svc, slug)
        user = users.create_user(
            svc, tenant_slug=slug, email=email, password=password, role=role, name=name,
            is_platform_admin=platform_admin,
        )  # fmt: skip
    console.print(f"created {user.role} user {user.email} in tenant {user.tenant_slug} (id {user.id})")


@keys_app.command("list")
def keys_list(
    tenant: Annotated[str | None, typer.Option(help="Tenant slug (default: the default tenant)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List a tenant's API keys (prefixes only)."""
    from servicetsunami.services.identity import tenants

    with _services() as svc:
        slug = tenant or svc.settings.default_tenant
        rows = tenants.list_api_keys(svc.store, tenant_slug=slug)
    if as_json:
        console.print_json(json.dumps([r.model_dump(mode="json") for r in rows]))
        return
    table = Table("id", "prefix", "name", "role", "created", "last used", "revoked")
    for r in rows:
        table.add_row(
            r.id, r.prefix, r.name, r.role, str(r.created_at), str(r.last_used_at or "-"), str(r.revoked_at or "-")
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="Key id or prefix")],
    tenant: Annotated[str | None, typer.Option(help="Tenant slug (default: the default tenant)")] = None,
) -> None:
    """Revoke an API key; it stops working at once."""
    from servicetsunami.services.identity import tenants

    with _services() as svc:
        slug = tenant or svc.settings.default_tenant
        revoked = tenants.revoke_api_key(svc.store, tenant_slug=slug, key_id_or_prefix=key)
    console.print(f"revoked key {revoked.prefix} ({revoked.name})")


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="One read-only Databricks SQL statement")],
    max_rows: Annotated[int | None, typer.Option(help="Lower the row cap")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Run a query as the principal of TSUNAMI_API_KEY."""
    from servicetsunami.services.catalog.query import query_sql

    with _services() as svc:
        result = query_sql(svc, _principal(svc), sql, max_rows=max_rows)
    if as_json:
        console.print_json(result.model_dump_json())
        return
    table = Table(*[f"{c.name}\n[dim]{c.type}[/dim]" for c in result.columns])
    for row in result.rows:
        table.add_row(*["NULL" if v is None else str(v) for v in row])
    console.print(table)
    console.print(
        f"{result.row_count} rows in {result.elapsed_ms:.1f} ms" + (f" — {result.hint}" if result.truncated else "")
    )


@app.command()
def upload(
    path: Annotated[pathlib.Path, typer.Argument(exists=True, dir_okay=False, help="File to ingest")],
    dataset: Annotated[str, typer.Option(help="Bronze table name")],
    mode: Annotated[str, typer.Option(help="create | append | overwrite")] = "create",
    sheet: Annotated[str | None, typer.Option(help="Excel sheet (default: all)")] = None,
    delimiter: Annotated[str | None, typer.Option(help="CSV delimiter (default: detect)")] = None,
    encoding: Annotated[str | None, typer.Option(help="utf-8 | utf-16 | latin-1")] = None,
) -> None:
    """Ingest a local file into bronze as the principal of TSUNAMI_API_KEY."""
    from servicetsunami.services.ingestion.uploads import FileOptions, upload_file

    with _services() as svc:
        result = upload_file(
            svc,
            _principal(svc),
            file_name=path.name,
            dataset_name=dataset,
            path=path,
            mode=mode,
            options=FileOptions(sheet=sheet, delimiter=delimiter, encoding=encoding),
        )
    console.print(f"{result.rows} rows into {result.table} (version {result.version}) in {result.elapsed_ms:.0f} ms")


@app.command()
def tables(layer: Annotated[str | None, typer.Option(help="bronze | silver | gold")] = None) -> None:
    """List the tables of your catalog (principal of TSUNAMI_API_KEY)."""
    from servicetsunami.services.catalog.tables import list_tables

    with _services() as svc:
        rows = list_tables(svc, _principal(svc), layer=layer)
    table = Table("table", "version", "rows", "bytes")
    for r in rows:
        table.add_row(f"{r.schema_}.{r.name}", str(r.version), str(r.rows), str(r.size_bytes))
    console.print(table)


@connections_app.command("create")
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
    with _services() as svc:
        created = connect_postgres(
            svc,
            _principal(svc),
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


@connections_app.command("list")
def connections_list() -> None:
    """List your connections (never their secrets)."""
    from servicetsunami.services.ingestion.connections import list_connections

    with _services() as svc:
        rows = list_connections(svc, _principal(svc))
    table = Table("id", "name", "host", "database", "last test")
    for r in rows:
        last = "-" if r.last_test_ok is None else ("ok" if r.last_test_ok else f"failed: {r.last_test_detail}")
        table.add_row(
            r.id, r.name, f"{r.config.get('host')}:{r.config.get('port')}", str(r.config.get("database")), last
        )
    console.print(table)


@connections_app.command("test")
def connections_test(connection_id: Annotated[str, typer.Argument(help="Connection id")]) -> None:
    """Connect and report latency, version, or a diagnosis."""
    from servicetsunami.services.ingestion.connections import test_connection

    with _services() as svc:
        result = test_connection(svc, _principal(svc), connection_id)
    console.print_json(result.model_dump_json())
    if not result.ok:
        raise typer.Exit(1)


@app.command()
def sync(
    connection_id: Annotated[str, typer.Argument(help="Connection id")],
    table: Annotated[str, typer.Argument(help="Source table, e.g. public.customers")],
    mode: Annotated[str, typer.Option(help="full_refresh | incremental_append | incremental_merge")] = "full_refresh",
    cursor: Annotated[str | None, typer.Option(help="Cursor column (incremental modes)")] = None,
    key: Annotated[list[str] | None, typer.Option(help="Primary key column (merge; repeat for more)")] = None,
    target: Annotated[str | None, typer.Option(help="Bronze table (default: the source table's name)")] = None,
) -> None:
    """Sync a source table into bronze, with a progress bar; exactly once even if interrupted."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from servicetsunami.services.ingestion.syncs import SyncRunPublic, start_sync, wait_for_run

    with _services() as svc:
        principal = _principal(svc)
        run_id = start_sync(
            svc,
            principal,
            connection_id,
            table,
            sync_mode=mode,
            cursor_column=cursor,
            primary_key=key or None,
            target_table=target,
        )
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=err,
        ) as bar:
            task = bar.add_task(f"sync {table}", total=None, info="starting")

            def show(status: SyncRunPublic) -> None:
                rows = status.rows
                pct = status.progress.get("batch_percent")
                bar.update(task, info=f"{rows:,} rows" + (f", batch {pct:.0f}%" if isinstance(pct, float) else ""))

            status = wait_for_run(svc, principal, run_id, timeout=float("inf"), on_progress=show)
    console.print(
        f"{status.status}: {status.rows:,} rows, {status.bytes:,} bytes into {status.bronze_table} "
        f"(version {status.table_version}) in {status.duration_seconds} s"
        + (f" — {status.error}" if status.error else "")
    )
    if status.status != "succeeded":
        raise typer.Exit(1)


@app.command("syncs")
def syncs_list() -> None:
    """Configured syncs with their state and last run."""
    from servicetsunami.services.ingestion.syncs import list_syncs

    with _services() as svc:
        rows = list_syncs(svc, _principal(svc))
    table = Table("bronze table", "source", "mode", "cursor", "last run")
    for r in rows:
        cursor = (r.state.get("cursor") or {}).get("value", "-")
        last = f"{r.last_run.status} ({r.last_run.rows} rows)" if r.last_run else "-"
        table.add_row(r.bronze_table, r.source_table, r.mode, str(cursor), last)
    console.print(table)


@secrets_app.command("rotate")
def secrets_rotate() -> None:
    """Re-encrypt every stored secret under a new master key, while the service keeps running."""
    from servicetsunami.services.identity.secrets import rotate_secrets

    with _services() as svc:
        report = rotate_secrets(svc.store, svc.settings)
    console.print_json(report.model_dump_json())


@secrets_app.command("add-key")
def secrets_add_key() -> None:
    """Add a new active master key (key file mode); older keys stay for decryption."""
    from servicetsunami.security.secrets import add_key

    settings = Settings()
    try:
        kid = add_key(settings)
    except TsunamiError as exc:
        err.print(f"[red]error[/red] ({exc.code}): {exc.message}")
        raise typer.Exit(2) from None
    console.print(f"new active key {kid}; run `tsunami secrets rotate` to re-encrypt stored secrets")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()


@mirror_app.command("status")
def mirror_status() -> None:
    """How many mirror jobs are pending, synced and failed."""
    with _services() as svc:
        if svc.mirror is None:
            raise InvalidInput("no mirror is configured; set TSUNAMI_MIRROR=databricks")
        counts = svc.mirror.summary()
    console.print(", ".join(f"{k}: {v}" for k, v in counts.items()))


@mirror_app.command("retry")
def mirror_retry() -> None:
    """Put failed mirror jobs back in the queue and replay every due job now."""
    with _services() as svc:
        if svc.mirror is None:
            raise InvalidInput("no mirror is configured; set TSUNAMI_MIRROR=databricks")
        requeued = svc.mirror.retry_failed()
        report = svc.mirror.replay_due()
    console.print(
        f"requeued {requeued} failed job(s); synced {report.synced}, retrying {report.retrying}, failed {report.failed}"
    )
    if report.failed or report.retrying:
        raise typer.Exit(1)
