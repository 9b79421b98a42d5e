"""Two tenants: every route that takes an id answers 404 for the other tenant's ids, and no list
shows the other tenant's objects."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from servicetsunami.services.container import Services
from tests.integration.api.support import data_source_body, login, pg_table, upload

pytestmark = pytest.mark.postgres


def _ids_of(page: dict[str, Any], field: str = "id") -> set[str]:
    return {item[field] for item in page["items"]}


def test_no_route_reaches_another_tenants_objects(client: TestClient, services: Services) -> None:
    acme = login(client, services, "acme")
    globex = login(client, services, "globex")
    with pg_table() as table:
        dataset_id = str(upload(client, acme.headers, "orders")["dataset_id"])
        source = client.post("/api/v1/data-sources", json=data_source_body("pg"), headers=acme.headers)
        assert source.status_code == 201, source.text
        source_id = source.json()["id"]
        run = client.post(
            f"/api/v1/data-sources/{source_id}/syncs",
            json={"table_name": f"public.{table}", "wait_seconds": 30},
            headers=acme.headers,
        )
        assert run.status_code == 202 and run.json()["status"] == "succeeded", run.text
        run_id = run.json()["run_id"]
        key_id = client.post("/api/v1/api-keys", json={"name": "k"}, headers=acme.headers).json()["id"]
        user_id = client.get("/api/v1/auth/me", headers=acme.headers).json()["user"]["id"]
        pipeline = {"name": "p", "tasks": [{"task_key": "a", "kind": "sql", "config": {"sql": "SELECT 1"}}]}
        pipeline_id = client.post("/api/v1/pipelines", json=pipeline, headers=acme.headers).json()["job_id"]
        pipeline_run = client.post(
            f"/api/v1/pipelines/{pipeline_id}/run", json={"wait_seconds": 30}, headers=acme.headers
        )
        pipeline_run_id = pipeline_run.json()["run_id"]

        by_id: list[tuple[str, str, dict[str, Any] | None]] = [
            ("GET", f"/api/v1/datasets/{dataset_id}", None),
            ("GET", f"/api/v1/datasets/{dataset_id}/preview", None),
            ("POST", f"/api/v1/datasets/{dataset_id}/query", {}),
            ("DELETE", f"/api/v1/datasets/{dataset_id}", None),
            ("GET", f"/api/v1/data-sources/{source_id}", None),
            ("POST", f"/api/v1/data-sources/{source_id}/test", None),
            ("GET", f"/api/v1/data-sources/{source_id}/tables", None),
            ("POST", f"/api/v1/data-sources/{source_id}/syncs", {"table_name": f"public.{table}"}),
            ("GET", f"/api/v1/data-sources/{source_id}/syncs", None),
            ("GET", f"/api/v1/data-sources/syncs/{run_id}", None),
            ("POST", f"/api/v1/data-sources/syncs/{run_id}/cancel", None),
            ("DELETE", f"/api/v1/api-keys/{key_id}", None),
            ("GET", f"/api/v1/users/{user_id}", None),
            ("GET", "/api/v1/tables/bronze/orders", None),
            ("GET", f"/api/v1/tables/bronze/{table}", None),
            ("GET", f"/api/v1/pipelines/{pipeline_id}", None),
            ("PUT", f"/api/v1/pipelines/{pipeline_id}", pipeline),
            ("POST", f"/api/v1/pipelines/{pipeline_id}/run", {}),
            ("POST", f"/api/v1/pipelines/{pipeline_id}/pause", {"paused": True}),
            ("GET", f"/api/v1/pipelines/{pipeline_id}/runs", None),
            ("GET", f"/api/v1/pipelines/runs/{pipeline_run_id}", None),
            ("POST", f"/api/v1/pipelines/runs/{pipeline_run_id}/cancel", None),
            ("POST", f"/api/v1/pipelines/runs/{pipeline_run_id}/repair", {}),
            ("DELETE", f"/api/v1/pipelines/{pipeline_id}", None),
        ]
        for method, path, body in by_id:
            answer = client.request(method, path, json=body, headers=globex.headers)
            assert answer.status_code == 404, f"{method} {path} -> {answer.status_code} {answer.text}"
            assert answer.json()["code"] == "not_found"

        lists = {
            "/api/v1/datasets": dataset_id,
            "/api/v1/data-sources": source_id,
            "/api/v1/api-keys": key_id,
            "/api/v1/users": user_id,
        }
        for path, acme_id in lists.items():
            assert acme_id in _ids_of(client.get(path, headers=acme.headers).json()), path
            assert acme_id not in _ids_of(client.get(path, headers=globex.headers).json()), path
        assert pipeline_id in _ids_of(client.get("/api/v1/pipelines", headers=acme.headers).json(), "job_id")
        assert client.get("/api/v1/pipelines", headers=globex.headers).json()["items"] == []
        globex_tables = client.get("/api/v1/tables", headers=globex.headers).json()["items"]
        assert all(t["catalog"] == "tenant_globex" for t in globex_tables)
        usage = client.get("/api/v1/databricks/usage", headers=globex.headers).json()
        assert (usage["datasets"], usage["data_sources"], usage["syncs"], usage["tables"]) == (0, 0, 0, 0)
        # Everything is still there for its owner.
        assert client.get(f"/api/v1/datasets/{dataset_id}", headers=acme.headers).status_code == 200
        assert client.get(f"/api/v1/data-sources/syncs/{run_id}", headers=acme.headers).status_code == 200
