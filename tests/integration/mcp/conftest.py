"""MCP fixtures: API keys of two tenants and a real HTTP server (see ``support.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from servicetsunami.services.container import Services
from tests.helpers import make_principal
from tests.integration.mcp.support import HttpServer, Keys, running_http_server


@pytest.fixture
def keys(services: Services) -> Keys:
    return Keys(
        acme_engineer=make_principal(services, "acme", "engineer")[1],
        acme_analyst=make_principal(services, "acme", "analyst")[1],
        globex_engineer=make_principal(services, "globex", "engineer")[1],
    )


@pytest.fixture
def http_server(services: Services) -> Iterator[HttpServer]:
    with running_http_server(services) as server:
        yield server
