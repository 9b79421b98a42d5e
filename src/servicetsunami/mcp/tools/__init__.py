"""MCP tools, one module per service area. Each module has ``register(server, services, caller)``.

Tools are thin: check and convert arguments, call one service function with the caller's
principal (in a worker thread, through :func:`~servicetsunami.mcp.errors.call_service`), shape the
result. Tags name the scopes a tool needs (see :mod:`servicetsunami.mcp.auth`).
"""

from __future__ import annotations

from fastmcp import FastMCP

from servicetsunami.mcp.auth import Caller
from servicetsunami.mcp.tools import (
    ai,
    bundles,
    catalog,
    compute,
    contexts,
    files,
    health,
    ingestion,
    jobs,
    notebooks,
    ops,
    query,
    runs,
    serving,
    sources,
    transforms,
    vectors,
    warehouses,
    webhooks,
)
from servicetsunami.services.container import Services


def register_all(server: FastMCP, services: Services, caller: Caller) -> None:
    areas = (
        ingestion,
        catalog,
        query,
        health,
        ops,
        sources,
        runs,
        jobs,
        transforms,
        ai,
        warehouses,
        notebooks,
        files,
        contexts,
        compute,
        vectors,
        serving,
        bundles,
        webhooks,
    )
    for module in areas:
        module.register(server, services, caller)
