"""The console's source pages over the ASGI app against the test PostgreSQL: a connection made from
the form its kind's schema generates, tested, its tables read, one synced into bronze with its run's
page; the secret typed in is never shown again; roles and tenants."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from servicetsunami.services.container import Services
from servicetsunami.services.ingestion import syncs
from tests.helpers import make_principal
from tests.integration.console.conftest import csrf_of, sign_in_as
from tests.integration.pg.support import connect, postgres_config

PLANTED = "planted-secret-c0ns0le"
DEADLINE = 60.0


@pytest.fixture
def schema() -> Iterator[str]:
    name = f"tsunami_console_{secrets.token_hex(4)}"
    with connect() as pg:
        pg.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        pg.execute(
            sql.SQL("CREATE TABLE {}.orders (id bigint PRIMARY KEY, amount numeric(10,2))").format(sql.Identifier(name))
        )
        pg.execute(
            sql.SQL("INSERT INTO {}.orders SELECT i, i * 1.5 FROM generate_series(1, 250) i").format(
                sql.Identifier(name)
            )
        )
    try:
        yield name
    finally:
        with connect() as pg:
            pg.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def _form(csrf: str, schema: str, **overrides: Any) -> dict[str, str]:
    config = postgres_config()
    form = {
        "csrf_token": csrf,
        "kind": "postgres",
        "name": "shop",
        "cfg.host": config.host,
        "cfg.port": str(config.port),
        "cfg.database": config.database,
        "cfg.user": config.user,
        "cfg.password": PLANTED,
        "cfg.schemas": schema,
    }
    return {**form, **overrides}


def test_a_source_is_connected_from_its_form_tested_browsed_and_synced(
    client: TestClient, services: Services, schema: str
) -> None:
    owner = make_principal(services, "acme")[0]  # before the sync: its writes would compete with the sync's
    sign_in_as(client, services, "acme")
    kinds = client.get("/sources").text
    assert "/sources/new?kind=postgres" in kinds and "/sources/new?kind=salesforce" in kinds
    form = client.get("/sources/new?kind=postgres").text
    assert 'name="cfg.password"' in form and 'type="password"' in form and 'name="cfg.sslmode"' in form
    made = client.post("/sources", data=_form(csrf_of(form), schema))
    assert made.status_code == 303, made.text
    page = client.get(made.headers["location"])
    assert 'data-test="ok"' in page.text
    connection_id = made.headers["location"].rsplit("/", 1)[1]
    tables = client.get(f"/sources/{connection_id}/tables", headers={"HX-Request": "true"}).text
    assert f'data-table="{schema}.orders"' in tables
    started = client.post(
        f"/sources/{connection_id}/sync",
        data={"csrf_token": csrf_of(page.text), "table": f"{schema}.orders", "mode": "full_refresh"},
    )
    assert started.status_code == 303, started.text
    run_id = started.headers["location"].rsplit("/", 1)[1]
    end = time.monotonic() + DEADLINE
    while (run := syncs.get_sync_status(services, owner, run_id)).finished_at is None:
        assert time.monotonic() < end, "the sync did not finish"
        services.launcher.wait_change(0.2)
    shown = client.get(f"/syncs/runs/{run_id}").text
    assert 'data-state="succeeded"' in shown and "250" in shown
    assert run.rows == 250
    for path in ("/sources", f"/sources/{connection_id}", f"/syncs/runs/{run_id}", "/admin/audit"):
        assert PLANTED not in client.get(path).text


def test_a_wrong_setting_is_refused_with_its_code_and_nothing_is_kept(
    client: TestClient, services: Services, schema: str
) -> None:
    sign_in_as(client, services, "acme")
    form = client.get("/sources/new?kind=postgres").text
    answer = client.post("/sources", data=_form(csrf_of(form), schema, **{"cfg.port": "not-a-port"}))
    assert answer.status_code == 400 and 'data-code="invalid_input"' in answer.text
    assert PLANTED not in answer.text
    assert "No sources yet" in client.get("/sources").text


def test_an_unreachable_source_is_kept_with_the_tests_diagnosis(client: TestClient, services: Services) -> None:
    sign_in_as(client, services, "acme")
    form = client.get("/sources/new?kind=postgres").text
    made = client.post("/sources", data=_form(csrf_of(form), "public", **{"cfg.port": "1"}))
    assert made.status_code == 303
    page = client.get(made.headers["location"]).text
    assert 'data-test="failed"' in page


def test_only_admins_connect_sources_and_other_tenants_see_none(
    client: TestClient, services: Services, schema: str
) -> None:
    sign_in_as(client, services, "acme")
    form = client.get("/sources/new?kind=postgres").text
    made = client.post("/sources", data=_form(csrf_of(form), schema))
    connection_id = made.headers["location"].rsplit("/", 1)[1]
    client.cookies.clear()
    sign_in_as(client, services, "acme", role="engineer")
    page = client.get("/sources").text
    assert "/sources/new?kind=" not in page
    refused = client.post("/sources", data=_form(csrf_of(page), schema, name="again"))
    assert refused.status_code == 403
    client.cookies.clear()
    sign_in_as(client, services, "globex")
    assert client.get(f"/sources/{connection_id}").status_code == 404
    assert "shop" not in client.get("/sources").text
