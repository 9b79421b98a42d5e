"""Pytest fixtures around the fake: one server per test session, a fresh workspace (token) per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from servicetsunami.services.container import Services
from servicetsunami.settings import DatabricksSettings, Settings
from tests.fakes.databricks.server import FakeDatabricks, running_fake


@pytest.fixture(scope="session")
def databricks_fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeDatabricks]:
    with running_fake(Path(tmp_path_factory.mktemp("fake-databricks"))) as fake:
        yield fake


@pytest.fixture
def fake_workspace(databricks_fake: FakeDatabricks) -> Iterator[DatabricksSettings]:
    """Settings of a fresh workspace on the fake; the test fails if it sent SQL the fake refused."""
    databricks_fake.clear_faults()
    databricks_fake.down = False
    settings = databricks_settings(databricks_fake)
    yield settings
    databricks_fake.clear_faults()
    databricks_fake.down = False
    databricks_fake.check_clean()


@pytest.fixture
def on_databricks(tmp_path: Path, fake_workspace: DatabricksSettings) -> Iterator[Services]:
    """An open service container with ``TSUNAMI_ENGINE=databricks`` on a fresh fake workspace."""
    settings = Settings(  # type: ignore[call-arg]  # _env_file is a pydantic-settings option
        home=tmp_path / "databricks-home", engine="databricks", databricks=fake_workspace, _env_file=None
    )
    svc = Services.open(settings)
    try:
        yield svc
    finally:
        svc.close()


def databricks_settings(fake: FakeDatabricks, **overrides: object) -> DatabricksSettings:
    values: dict[str, object] = {
        "host": fake.url,
        "token": f"dapi{uuid.uuid4().hex}",
        "wait_timeout_seconds": 5,
        "retry_timeout_seconds": 30,
        "http_timeout_seconds": 20,
    }
    values |= overrides
    return DatabricksSettings.model_validate(values)
