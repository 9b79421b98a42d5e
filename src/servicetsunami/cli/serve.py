"""``tsunami serve`` (every door on one port) and ``tsunami mcp`` (MCP over stdio)."""

from __future__ import annotations

import os
import socket
from typing import Annotated, Any

import typer

from servicetsunami.cli.common import console, err, reported_errors, require_home
from servicetsunami.logs import configure_logging
from servicetsunami.settings import Settings

app = typer.Typer()

EXIT_PORT_BUSY = 1


def _check_port(host: str, port: int) -> None:
    """Exit with status 1 unless ``host:port`` can be bound now, as uvicorn will bind it.

    Checked before anything starts: on a first start the admin key is printed only once, and a server
    that then fails to listen would lose it.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            sock.bind((host, port))
        except OSError as exc:
            err.print(
                f"[red]error[/red]: cannot listen on {host}:{port} ({exc.strerror or exc}). Stop what is using "
                "it, or choose another port with --port or TSUNAMI_PORT. Nothing was started.",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(EXIT_PORT_BUSY) from None


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
    from servicetsunami.metrics import prepare_multiprocess
    from servicetsunami.services.container import Services
    from servicetsunami.services.identity import tenants
    from servicetsunami.services.ops.leftovers import sweep_leftovers
    from servicetsunami.services.runs import service as runs

    overrides: dict[str, Any] = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    if workers is not None:
        overrides["serve"] = {**Settings().serve.model_dump(), "workers": workers}
    settings = Settings(**overrides)
    _check_port(settings.host, settings.port)
    configure_logging(settings.log_level, json_lines=settings.log_format == "json")
    use_service_logging()
    services = Services.open(settings)
    created = tenants.bootstrap_service(services)
    sweep_leftovers(services)  # before any worker starts an upload of its own
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
        "timeout_graceful_shutdown": settings.serve.shutdown_seconds,
        "timeout_worker_healthcheck": settings.serve.worker_healthcheck_seconds,
    }
    try:
        if processes == 1:
            runs.ensure_worker(services)  # with several processes, each worker's app starts its own
            uvicorn.run(create_app(settings, services=services), **options)
        else:
            # Each worker builds its own app from the environment: hand it what the options said.
            os.environ.update({"TSUNAMI_HOST": settings.host, "TSUNAMI_PORT": str(settings.port)})
            # Every worker writes its metrics into one folder, emptied now (metrics.py).
            prepare_multiprocess(settings.resolved_home / "run" / "metrics")
            uvicorn.run("servicetsunami.api.app:worker_app", factory=True, workers=processes, **options)
    finally:
        services.close()


@app.command()
def mcp() -> None:
    """Speak MCP over stdio (for Claude Desktop). The principal comes from TSUNAMI_API_KEY."""
    from servicetsunami.mcp.stdio import run_stdio

    settings = Settings()
    with reported_errors():
        require_home(settings)
    run_stdio(settings)
