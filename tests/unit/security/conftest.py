"""Fixtures for the API key tests: a real SQLite file per test, migrated."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from servicetsunami.security.auth import clear_key_cache
from servicetsunami.store.db import Store


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
