"""The overview over the ASGI app: syncs and runs per day for the last 14 days drawn as an SVG on the
server, rows and bytes by layer, and the empty state; the daily counts on both stores."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from servicetsunami.services.container import Services
from servicetsunami.services.ops.activity import daily_activity
from servicetsunami.store.repositories import runs as runs_repo
from servicetsunami.tenancy import Principal
from tests.helpers import make_principal
from tests.integration.console.conftest import sign_in_as
from tests.integration.runs.support import postgres_database, settings_for
from tests.integration.serving.conftest import add_orders

BAR = re.compile(r'data-day="([^"]+)" data-series="(\w+)" data-count="(\d+)"')


def _ran(services: Services, principal: Principal, kind: str, *, days_ago: int, parent: str | None = None) -> str:
    """A finished run of ``kind`` created ``days_ago`` days ago (as the store keeps any run)."""
    with services.store.session() as session:
        run = runs_repo.create_run(
            session, tenant_id=principal.tenant_id, kind=kind, subject="s", role="engineer", params={}, parent_id=parent
        )
        run.state = "succeeded"
        run.created_at = datetime.now(UTC) - timedelta(days=days_ago)
        run.finished_at = run.created_at
        return run.id


def _activity(services: Services) -> Principal:
    owner = make_principal(services, "acme", role="engineer")[0]
    _ran(services, owner, "sync", days_ago=0)
    _ran(services, owner, "sync", days_ago=0)
    job_run = _ran(services, owner, "job_run", days_ago=2)
    _ran(services, owner, "task_run", days_ago=2, parent=job_run)  # counted in its job run
    _ran(services, owner, "notebook_run", days_ago=20)  # before the window
    other = make_principal(services, "globex", role="engineer")[0]
    _ran(services, other, "sync", days_ago=0)
    return owner


def test_the_overview_draws_syncs_and_runs_per_day_and_rows_and_bytes_by_layer(
    client: TestClient, services: Services
) -> None:
    owner = _activity(services)
    add_orders(services, owner)
    sign_in_as(client, services, "acme", role="analyst")
    html = client.get("/").text
    today = datetime.now(UTC).date()
    bars = {(day, series): int(n) for day, series, n in BAR.findall(html)}
    assert bars == {(today.isoformat(), "syncs"): 2, ((today - timedelta(days=2)).isoformat(), "runs"): 1}
    assert "<script" not in html.split('class="day-chart"')[1].split("</svg>")[0]
    silver = html.split('data-layer="silver"')[1].split("</tr>")[0]
    assert ">3<" in silver  # the three rows of silver.orders


def test_an_overview_with_nothing_run_says_what_to_do_first(client: TestClient, services: Services) -> None:
    sign_in_as(client, services, "acme", role="engineer")
    html = client.get("/").text
    assert "Nothing ran in the last 14 days" in html and 'href="/sources"' in html and "day-chart" not in html


@pytest.fixture(params=["sqlite", "postgres"])
def store_services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    if request.param == "sqlite":
        services = Services.open(settings_for(tmp_path / "home", ""))
        yield services
        services.close()
        return
    with postgres_database() as url:
        services = Services.open(settings_for(tmp_path / "home", url))
        yield services
        services.close()


def test_daily_activity_counts_each_day_of_the_window_on_both_stores(store_services: Services) -> None:
    owner = _activity(store_services)
    days = daily_activity(store_services, owner, days=14).days
    assert len(days) == 14 and days[-1].day == datetime.now(UTC).date().isoformat()
    assert (days[-1].syncs, days[-1].runs) == (2, 0)
    assert (days[-3].syncs, days[-3].runs) == (0, 1)
    assert sum(d.syncs + d.runs for d in days) == 3
