"""Webhook fixtures: a service container on each store (SQLite, PostgreSQL) with short beats and
fast retries, an admin of one tenant, and a receiver on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from servicetsunami.services.container import Services
from servicetsunami.settings import Settings
from servicetsunami.tenancy import Principal
from tests.helpers import make_principal
from tests.integration.runs.support import FAST_RUNS, postgres_database
from tests.integration.webhooks.receiver import Receiver, receiver

FAST_WEBHOOKS = {"poll_seconds": 0.05, "backoff_seconds": 0.2, "max_attempts": 3, "timeout_seconds": 5}


def settings_for(home: Path, database_url: str = "", **overrides: Any) -> Settings:
    webhooks = {**FAST_WEBHOOKS, **overrides.pop("webhooks", {})}
    return Settings(  # type: ignore[call-arg]  # pydantic-settings' _env_file option
        home=home, database_url=database_url, runs=FAST_RUNS, webhooks=webhooks, _env_file=None, **overrides
    )


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each test runs on both stores: "" is the SQLite file in the home folder."""
    if request.param == "sqlite":
        yield ""
        return
    with postgres_database() as url:
        yield url


@pytest.fixture
def svc(tmp_path: Path, database_url: str) -> Iterator[Services]:
    services = Services.open(settings_for(tmp_path / "home", database_url))
    try:
        yield services
    finally:
        services.close()


@pytest.fixture
def admin(svc: Services) -> Principal:
    return make_principal(svc, "acme")[0]


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as r:
        yield r
