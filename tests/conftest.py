"""Shared fixtures: settings in a temporary home, an open service container, principals of two
tenants (``acme`` and ``globex``) for isolation tests, and a migrated SQLite store. The API-key cache
is emptied around every test so no test sees another's keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from servicetsunami.security.auth import clear_key_cache
from servicetsunami.services.container import Services
from servicetsunami.settings import Settings
from servicetsunami.store.db import Store
from servicetsunami.tenancy import Principal
from tests.helpers import make_principal

pytest_plugins = ["tests.fakes.databricks.fixtures", "pytester"]


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


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'tsunami.db'}"


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    store = Store(sqlite_url)
    store.migrate()
    yield store
    store.dispose()


@pytest.fixture(autouse=True)
def _fresh_key_cache() -> Iterator[None]:
    clear_key_cache()
    yield
    clear_key_cache()
