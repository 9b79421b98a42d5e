"""Shared fixtures: settings in a temporary home, an open service container, and principals of
two tenants (``acme`` and ``globex``) for isolation tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from servicetsunami.services.container import Services
from servicetsunami.settings import Settings
from servicetsunami.tenancy import Principal
from tests.helpers import make_principal


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", _env_file=None)  # type: ignore[call-arg]  # pydantic-settings option


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    svc = Services.open(settings)
    try:
        yield svc
    finally:
        svc.close()


@pytest.fixture
def acme(services: Services) -> Principal:
    return make_principal(services, "acme")[0]


@pytest.fixture
def globex(services: Services) -> Principal:
    return make_principal(services, "globex")[0]
