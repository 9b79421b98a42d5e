"""``tsunami serve`` (every door on one port) and ``tsunami mcp`` (MCP over stdio)."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from servicetsunami.cli.common import console
from servicetsunami.logs import configure_logging
from servicetsunami.settings import Settings

app = typer.Typer()


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
        "timeout_graceful_shutdown": settings.serve.shutdown_seconds,
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
