"""Shared fixtures: settings in a temporary home, an open service container, principals of two
tenants (``acme`` and ``globex``) for isolation tests, and a migrated SQLite store. The API-key cache
is emptied around every test so no test sees another's keys.

The home of ``settings`` starts with a copy of a system store migrated once per run: migrating an
empty store took most of each ``Services.open``. The migrations themselves run from nothing in the
``store`` fixture's tests (tests/unit/store) and wherever a test makes its own settings."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from servicetsunami.security.auth import clear_key_cache
from servicetsunami.services.container import Services
from servicetsunami.settings import Settings
from servicetsunami.store.db import CHECK_WRITE_LOCKS_VARIABLE, Store
from servicetsunami.tenancy import Principal
from tests.helpers import make_principal

# Every store this run opens, in this process and the processes it starts, checks that a session that
# reads and then writes took the write lock (servicetsunami.store.db: the write-lock check).
os.environ[CHECK_WRITE_LOCKS_VARIABLE] = "1"

pytest_plugins = ["tests.fakes.databricks.fixtures", "pytester"]


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty system store (SQLite) at the newest revision, to copy into a home."""
    path = tmp_path_factory.mktemp("migrated-store") / "tsunami.db"
    store = Store(f"sqlite:///{path}")
    store.migrate()
    store.dispose()
    return path


def migrated_home(home: Path, migrated_store: Path) -> Path:
    """``home`` created, holding a copy of the migrated store where the settings look for it."""
    home.mkdir(parents=True)
    shutil.copyfile(migrated_store, home / "tsunami.db")
    return home


@pytest.fixture
def settings(tmp_path: Path, migrated_store: Path) -> Settings:
    home = migrated_home(tmp_path / "home", migrated_store)
    return Settings(home=home, _env_file=None)  # type: ignore[call-arg]  # pydantic-settings option


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
