"""The ASGI app of `tsunami serve`: health, auth, errors as problem+json, tenant isolation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from servicetsunami.api.app import create_app
from servicetsunami.services.container import Services
from servicetsunami.services.ingestion.uploads import upload_file
from tests.helpers import make_principal


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services.settings, services=services)) as c:
        yield c


def test_health_checks_the_store_and_the_engine(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["checks"]["store"]["ok"] and body["checks"]["engine"]["ok"]
    assert client.get("/health").headers["x-request-id"]


def test_protected_routes_need_a_valid_key(client: TestClient) -> None:
    assert client.get("/api/v1/tables").status_code == 401
    r = client.get("/api/v1/tables", headers={"Authorization": "Bearer tsk_deadbeef_nope"})
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "unauthenticated"
    assert "tsk_deadbeef_nope" not in r.text


def test_query_and_describe_over_rest_stay_inside_the_callers_catalog(client: TestClient, services: Services) -> None:
    acme, acme_key = make_principal(services, "acme")
    _, globex_key = make_principal(services, "globex")
    upload_file(services, acme, file_name="o.csv", dataset_name="orders", content=b"id,amount\n1,2.5\n")
    ok = client.post(
        "/api/v1/query",
        json={"sql": "SELECT sum(amount) AS s FROM orders"},
        headers={"Authorization": f"Bearer {acme_key}"},
    )
    assert ok.status_code == 200 and ok.json()["rows"] == [[2.5]]
    assert (
        client.get("/api/v1/tables/bronze/orders", headers={"Authorization": f"Bearer {acme_key}"}).json()["rows"] == 1
    )
    other = {"Authorization": f"Bearer {globex_key}"}
    assert client.get("/api/v1/tables/bronze/orders", headers=other).status_code == 404
    refused = client.post("/api/v1/query", json={"sql": f"SELECT * FROM {acme.catalog}.bronze.orders"}, headers=other)
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
    bad = client.post("/api/v1/query", json={"sql": "SELECT * FROM read_csv('/etc/passwd')"}, headers=other)
    assert bad.status_code == 400 and bad.json()["code"] == "query_refused"


def test_silver_gold_lineage_and_profile_over_rest(client: TestClient, services: Services) -> None:
    acme, key = make_principal(services, "acme", "engineer")
    _, analyst_key = make_principal(services, "acme", "analyst")
    upload_file(
        services, acme, file_name="o.csv", dataset_name="orders", content=b'id,amount\n1,"1,250.00"\n1,"1,250.00"\n'
    )
    auth = {"Authorization": f"Bearer {key}"}

    silver = client.post("/api/v1/silver", json={"bronze_table": "orders"}, headers=auth)
    assert silver.status_code == 200, silver.text
    assert silver.json()["rows"] == 1 and silver.json()["inferred_types"] == {"amount": "DECIMAL(18,2)"}
    made = client.post(
        "/api/v1/gold", json={"name": "total", "sql": "SELECT SUM(amount) AS s FROM silver.orders"}, headers=auth
    )
    assert made.status_code == 200, made.text
    assert client.post("/api/v1/gold/total/refresh", headers=auth).json()["rows"] == 1
    graph = client.get("/api/v1/tables/gold/total/lineage", headers=auth).json()
    assert graph["upstream"] == ["silver.orders", "bronze.orders", "file:o.csv"]
    for missing in ("lineage", ""):  # answered alike: neither admits a table that is not there
        answer = client.get(f"/api/v1/tables/gold/nowhere/{missing}".rstrip("/"), headers=auth)
        assert (answer.status_code, answer.json()["code"]) == (404, "not_found")
    profile = client.get("/api/v1/tables/silver/orders/profile", headers={"Authorization": f"Bearer {analyst_key}"})
    assert profile.json()["likely_keys"] == ["id"]
    refused = client.post(
        "/api/v1/silver", json={"bronze_table": "orders"}, headers={"Authorization": f"Bearer {analyst_key}"}
    )
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
