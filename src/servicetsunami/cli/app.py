"""The typer app: which module's commands appear under which name, in the order ``--help`` lists them.

Commands without a group (``serve``, ``query``, ``sync``...) come from typer apps mounted without a
name, so they sit at the top level; groups are mounted under their name.
"""

from __future__ import annotations

import sys

import typer

from servicetsunami.cli import (
    connections,
    data,
    keys,
    mirror,
    notebooks,
    runs,
    secrets,
    serve,
    syncs,
    tenants,
    users,
)
from servicetsunami.cli.common import warn_unknown_environment

app = typer.Typer(help="ServiceTsunami: the integration brain for data and AI agents.", no_args_is_help=True)
# typer lists top-level commands first, in mounting order, then the groups in mounting order.
app.add_typer(serve.app)
app.add_typer(data.app)
app.add_typer(syncs.app)
app.add_typer(tenants.app, name="tenants")
app.add_typer(keys.app, name="keys")
app.add_typer(connections.app, name="connections")
app.add_typer(runs.app, name="runs")
app.add_typer(notebooks.app, name="notebooks")
app.add_typer(secrets.app, name="secrets")
app.add_typer(mirror.app, name="mirror")
app.add_typer(users.app, name="users")


@app.callback()
def _start() -> None:
    # Before every command, serve and mcp included: a misspelt setting is otherwise silently ignored.
    warn_unknown_environment()


def main() -> None:
    """The ``tsunami`` console script; Ctrl-C exits with the shell's usual 130 instead of a traceback."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
