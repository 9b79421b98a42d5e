"""Pages of the REST lists the store cuts (users, API keys, data sources, datasets, a source's
syncs): walked with ``limit`` and ``cursor`` while items are added, and cursors of another shape
refused."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from servicetsunami.api.pagination import encode_cursor
from servicetsunami.services.container import Services
from servicetsunami.store.repositories import connections as connections_repo
from servicetsunami.store.repositories import tenants as tenants_repo
from tests.integration.api.support import login


def _add_connection(services: Services, slug: str, name: str) -> str:
    """A stored connection (never connected to: listing does not need a reachable source)."""
    with services.store.session() as s:
        tenant = tenants_repo.get_tenant_by_slug(s, slug)
        return connections_repo.create_connection(
            s, tenant_id=tenant.id, name=name, kind="postgres", config={"host": "db.invalid"}
        ).id


def _get(client: TestClient, path: str, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_api_keys_page_oldest_first_and_a_key_made_between_reads_comes_last(
    client: TestClient, services: Services
) -> None:
    admin = login(client, services, "acme")
    for name in ("k1", "k2", "k3"):
        assert client.post("/api/v1/api-keys", json={"name": name}, headers=admin.headers).status_code == 201
    first = _get(client, "/api/v1/api-keys", admin.headers, limit=2)
    assert [k["name"] for k in first["items"]] == ["k1", "k2"] and first["next_cursor"]
    assert client.post("/api/v1/api-keys", json={"name": "k4"}, headers=admin.headers).status_code == 201
    second = _get(client, "/api/v1/api-keys", admin.headers, limit=2, cursor=first["next_cursor"])
    assert [k["name"] for k in second["items"]] == ["k3", "k4"] and second["next_cursor"] is None


def test_users_page_by_address_and_one_added_before_the_cursor_is_not_shown(
    client: TestClient, services: Services
) -> None:
    admin = login(client, services, "acme")  # admin-<hex>@acme.example
    for local in ("b", "c", "d"):
        body = {"email": f"{local}@acme.example", "password": "a-long-password"}
        assert client.post("/api/v1/users", json=body, headers=admin.headers).status_code == 201
    first = _get(client, "/api/v1/users", admin.headers, limit=2)
    assert [u["email"] for u in first["items"]] == [admin.email, "b@acme.example"]
    body = {"email": "a@acme.example", "password": "a-long-password"}  # "a@" sorts before "admin-"
    assert client.post("/api/v1/users", json=body, headers=admin.headers).status_code == 201
    second = _get(client, "/api/v1/users", admin.headers, limit=2, cursor=first["next_cursor"])
    assert [u["email"] for u in second["items"]] == ["c@acme.example", "d@acme.example"]
    assert second["next_cursor"] is None


def test_data_sources_page_by_name_and_never_show_another_tenants(client: TestClient, services: Services) -> None:
    admin = login(client, services, "acme")
    login(client, services, "globex")
    for name in ("pg_c", "pg_a", "pg_b"):
        _add_connection(services, "acme", name)
    _add_connection(services, "globex", "pg_0")
    first = _get(client, "/api/v1/data-sources", admin.headers, limit=2)
    assert [c["name"] for c in first["items"]] == ["pg_a", "pg_b"]
    second = _get(client, "/api/v1/data-sources", admin.headers, limit=2, cursor=first["next_cursor"])
    assert [c["name"] for c in second["items"]] == ["pg_c"] and second["next_cursor"] is None


@pytest.mark.parametrize(
    "path", ["/api/v1/datasets", "/api/v1/users", "/api/v1/api-keys", "/api/v1/data-sources", "syncs"]
)
@pytest.mark.parametrize(
    "cursor", ["not-a-cursor", encode_cursor(("one part",)), encode_cursor(("three", "parts", "here"))]
)
def test_a_cursor_of_another_shape_is_refused_with_invalid_input(
    client: TestClient, services: Services, path: str, cursor: str
) -> None:
    admin = login(client, services, "acme")
    if path == "syncs":
        path = f"/api/v1/data-sources/{_add_connection(services, 'acme', 'pg')}/syncs"
    response = client.get(path, params={"cursor": cursor}, headers=admin.headers)
    assert response.status_code == 400 and response.json()["code"] == "invalid_input"


@pytest.mark.parametrize("moment", ["yesterday", "2025-01-01T00:00:00"])  # the second has no time zone
def test_an_api_key_cursor_without_a_timestamp_is_refused_with_invalid_input(
    client: TestClient, services: Services, moment: str
) -> None:
    admin = login(client, services, "acme")
    cursor = encode_cursor((moment, "key-id"))
    response = client.get("/api/v1/api-keys", params={"cursor": cursor}, headers=admin.headers)
    assert response.status_code == 400 and response.json()["code"] == "invalid_input"
