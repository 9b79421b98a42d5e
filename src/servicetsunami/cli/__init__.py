"""The ``tsunami`` command: the CLI door, one module per command group.

``serve`` runs every door in one process; ``mcp`` speaks MCP over stdio for Claude Desktop.
``tenants``, ``keys``, ``users``, ``secrets`` and ``mirror`` are operator commands: they act on the
system store of this machine directly. ``query``, ``upload``, ``tables``, ``connections``, ``sync``
and ``syncs`` act as the principal of ``TSUNAMI_API_KEY``.

``app.py`` builds the typer app and mounts the groups; ``common.py`` holds what the commands share
(opening the services, the principal of the key, printing). Each command imports its service
modules inside its body so that ``tsunami --help`` stays fast.
"""

from servicetsunami.cli.app import app, main

__all__ = ["app", "main"]
