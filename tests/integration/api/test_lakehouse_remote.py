"""The seeds' lakehouse status endpoints over the Databricks engine and in hybrid mode, both against
the Databricks REST fake: they report the workspace's real state, never a constant."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from servicetsunami.api.app import create_app
from servicetsunami.services.container import Services
from servicetsunami.settings import DatabricksSettings, Settings
from tests.integration.api.support import login, upload


def _client(settings: Settings) -> Iterator[tuple[TestClient, Services]]:
    svc = Services.open(settings)
    try:
        with TestClient(create_app(settings, services=svc)) as client:
            yield client, svc
    finally:
        svc.close()


@pytest.fixture
def on_databricks(tmp_path: Path, fake_workspace: DatabricksSettings) -> Iterator[tuple[TestClient, Services]]:
    yield from _client(Settings(home=tmp_path / "h", engine="databricks", databricks=fake_workspace, _env_file=None))  # type: ignore[call-arg]


@pytest.fixture
def hybrid(tmp_path: Path, fake_workspace: DatabricksSettings) -> Iterator[tuple[TestClient, Services]]:
    yield from _client(Settings(home=tmp_path / "h", mirror="databricks", databricks=fake_workspace, _env_file=None))  # type: ignore[call-arg]


def test_status_on_databricks_reports_the_workspace_catalog_and_initialize_creates_it(
    on_databricks: tuple[TestClient, Services],
) -> None:
    client, svc = on_databricks
    admin = login(client, svc, "acme")
    status = client.get("/api/v1/databricks/status", headers=admin.headers).json()
    assert status["engine"] == "databricks" and status["reachable"] is True
    assert status["catalog"] == "tenant_acme"
    svc.engine.ensure_catalog("tenant_acme")
    assert client.get("/api/v1/databricks/status", headers=admin.headers).json()["catalog_exists"] is True
    assert svc.engine.catalog_exists("tenant_nobody") is False
    upload(client, admin.headers, "sales")
    usage = client.get("/api/v1/databricks/usage", headers=admin.headers).json()
    assert (usage["tables"], usage["rows"]) == (1, 3)


def test_usage_in_hybrid_mode_shows_the_share_of_tables_mirrored(hybrid: tuple[TestClient, Services]) -> None:
    client, svc = hybrid
    assert svc.mirror is not None
    admin = login(client, svc, "acme")
    assert client.get("/api/v1/databricks/status", headers=admin.headers).json()["remote_configured"] is True
    upload(client, admin.headers, "sales")
    upload(client, admin.headers, "more")
    assert client.get("/api/v1/databricks/usage", headers=admin.headers).json()["synced_share"] == 0.0
    svc.mirror.replay_due()
    assert client.get("/api/v1/databricks/usage", headers=admin.headers).json()["synced_share"] == 1.0
