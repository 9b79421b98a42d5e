"""Operations fixtures: the real ASGI app over the test's services, called from a loopback address
or from another host, and the keys of an admin and an analyst of one tenant."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from servicetsunami.api.app import create_app
from servicetsunami.services.container import Services
from tests.helpers import make_principal


@dataclass
class Keys:
    admin: str
    analyst: str


@pytest.fixture
def keys(services: Services) -> Keys:
    return Keys(admin=make_principal(services, "acme")[1], analyst=make_principal(services, "acme", "analyst")[1])


def _client(services: Services, address: str) -> httpx.AsyncClient:
    app = create_app(services.settings, services=services)
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000")


@pytest.fixture
async def api(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the loopback address."""
    async with _client(services, "127.0.0.1") as client:
        yield client


@pytest.fixture
async def remote_api(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """A client from another host."""
    async with _client(services, "203.0.113.7") as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
