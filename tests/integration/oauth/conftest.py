"""The OAuth tests' server and person: the real app on a local port, and an engineer of tenant acme
who signs in and consents through its pages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from servicetsunami.services.container import Services
from tests.integration.live_server import live_server
from tests.integration.oauth.support import Person, person_of


@pytest.fixture
def base_url(services: Services) -> Iterator[str]:
    with live_server(services) as url:
        yield url


@pytest.fixture
def person(services: Services, base_url: str) -> Iterator[Person]:
    someone = person_of(services, base_url, "engineer")
    yield someone
    someone.close()
