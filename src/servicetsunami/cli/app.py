"""The typer app: which module's commands appear under which name, in the order ``--help`` lists them.

Commands without a group (``serve``, ``query``, ``sync``...) come from typer apps mounted without a
name, so they sit at the top level; groups are mounted under their name.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from servicetsunami.cli import (
    agents,
    bundles,
    clusters,
    config,
    connections,
    data,
    jobs,
    keys,
    mirror,
    notebooks,
    runs,
    secrets,
    serve,
    syncs,
    tenants,
    tools,
    users,
    vectors,
    webhooks,
)
from servicetsunami.cli.common import REMOTE_COMMANDS, err, target, warn_unknown_config, warn_unknown_environment

app = typer.Typer(help="ServiceTsunami: the integration brain for data and AI agents.", no_args_is_help=True)
# typer lists top-level commands first, in mounting order, then the groups in mounting order.
app.add_typer(serve.app)
app.add_typer(data.app)
app.add_typer(syncs.app)
app.add_typer(tenants.app, name="tenants")
app.add_typer(keys.app, name="keys")
app.add_typer(connections.app, name="connections")
app.add_typer(runs.app, name="runs")
app.add_typer(jobs.app, name="jobs")
app.add_typer(notebooks.app, name="notebooks")
app.add_typer(vectors.app, name="vectors")
app.add_typer(agents.app, name="agents")
app.add_typer(secrets.app, name="secrets")
app.add_typer(mirror.app, name="mirror")
app.add_typer(users.app, name="users")
app.add_typer(config.app, name="config")
app.add_typer(tools.app, name="tools")
app.add_typer(clusters.app, name="clusters")
app.add_typer(bundles.app, name="bundle")
app.add_typer(webhooks.app, name="webhooks")


@app.callback()
def _start(
    ctx: typer.Context,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            metavar="URL",
            help="Talk to a running server over REST (query, upload, tables, sync, syncs, runs, clusters) or MCP "
            "(tools) as the principal of TSUNAMI_API_KEY, instead of opening the data folder.",
        ),
    ] = None,
) -> None:
    # Before every command, serve and mcp included: a misspelt setting is otherwise silently ignored.
    warn_unknown_environment()
    if ctx.invoked_subcommand != "config":  # `config check` lists them itself
        warn_unknown_config()
    target.server = server
    command = ctx.invoked_subcommand
    if server is not None and command not in REMOTE_COMMANDS:
        err.print(
            f"[red]error[/red] (not_supported): `tsunami {command}` works on the server's data folder and has no "
            f"--server form; run it on the server's machine without --server (commands that take --server: "
            f"{', '.join(sorted(REMOTE_COMMANDS))})",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(2)


def main() -> None:
    """The ``tsunami`` console script; Ctrl-C exits with the shell's usual 130 instead of a traceback."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
