"""Datasets, tables, queries, lakehouse status, pagination and limits over REST."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from servicetsunami.api.app import create_app
from servicetsunami.mcp.errors import ERROR_META_KEY
from servicetsunami.services.container import Services
from servicetsunami.settings import Settings
from tests.integration.api.support import SALES_CSV, login, upload


def test_an_upload_becomes_a_dataset_to_describe_preview_query_and_delete(
    client: TestClient, services: Services
) -> None:
    admin = login(client, services, "acme")
    result = upload(client, admin.headers, "sales")
    assert result["rows"] == 3 and result["table"] == "bronze.sales"
    dataset_id = result["dataset_id"]
    detail = client.get(f"/api/v1/datasets/{dataset_id}", headers=admin.headers).json()
    assert detail["rows"] == 3 and detail["full_name"] == "tenant_acme.bronze.sales"
    assert {c["name"] for c in detail["columns"]} >= {"id", "region", "amount"}
    assert detail["versions"] and detail["landing_path"].startswith("/Volumes/tenant_acme/bronze/landing/")
    preview = client.get(f"/api/v1/datasets/{dataset_id}/preview?limit=2", headers=admin.headers).json()
    assert preview["row_count"] == 2
    total = client.post(
        f"/api/v1/datasets/{dataset_id}/query",
        json={"sql": "SELECT sum(amount) AS total FROM bronze.sales"},
        headers=admin.headers,
    ).json()
    assert total["rows"] == [[20.75]]
    deleted = client.delete(f"/api/v1/datasets/{dataset_id}", headers=admin.headers)
    assert deleted.status_code == 200 and deleted.json()["table_dropped"] is True
    assert deleted.json()["landing_file_kept"] is True and detail["landing_path"] in deleted.json()["note"]
    assert client.get(f"/api/v1/datasets/{dataset_id}", headers=admin.headers).status_code == 404
    assert client.get("/api/v1/tables/bronze/sales", headers=admin.headers).status_code == 404


def test_an_upload_is_streamed_to_disk_and_the_temporary_file_removed(client: TestClient, services: Services) -> None:
    admin = login(client, services, "acme")
    big = b"id,value\n" + b"".join(f"{i},{i * 0.5}\n".encode() for i in range(200_000))
    result = upload(client, admin.headers, "big", big)
    assert result["rows"] == 200_000
    folder = services.settings.resolved_home / "tmp" / "uploads"
    assert folder.is_dir() and not list(folder.iterdir())


def test_a_file_that_cannot_be_read_is_refused_with_a_clear_code(client: TestClient, services: Services) -> None:
    admin = login(client, services, "acme")
    odd = client.post("/api/v1/datasets", headers=admin.headers, files={"file": ("notes.doc", b"x", "text/plain")})
    assert odd.status_code == 400 and odd.json()["code"] == "invalid_input"
    missing = client.post("/api/v1/datasets", headers=admin.headers, data={"name": "x"})
    assert missing.status_code == 400 and "file" in missing.json()["detail"]


def test_lists_page_with_limit_and_cursor(client: TestClient, services: Services) -> None:
    admin = login(client, services, "acme")
    for name in ("a_one", "b_two", "c_three"):
        upload(client, admin.headers, name)
    first = client.get("/api/v1/datasets?limit=2", headers=admin.headers).json()
    assert [d["name"] for d in first["items"]] == ["a_one", "b_two"] and first["next_cursor"]
    second = client.get(f"/api/v1/datasets?limit=2&cursor={first['next_cursor']}", headers=admin.headers).json()
    assert [d["name"] for d in second["items"]] == ["c_three"] and second["next_cursor"] is None
    tables = client.get("/api/v1/tables?layer=bronze&limit=1", headers=admin.headers).json()
    assert len(tables["items"]) == 1 and tables["next_cursor"]
    bad = client.get("/api/v1/datasets?cursor=not-a-cursor", headers=admin.headers)
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_input"


def test_lakehouse_status_usage_and_initialize_are_measured(client: TestClient, services: Services) -> None:
    admin = login(client, services, "acme")
    status = client.get("/api/v1/databricks/status", headers=admin.headers).json()
    assert status["engine"] == "local" and status["reachable"] is True and status["catalog"] == "tenant_acme"
    assert status["catalog_exists"] is True and status["latency_ms"] >= 0
    before = client.get("/api/v1/databricks/usage", headers=admin.headers).json()
    upload(client, admin.headers, "sales")
    after = client.get("/api/v1/databricks/usage", headers=admin.headers).json()
    assert (after["datasets"], after["tables"], after["rows"]) == (before["datasets"] + 1, before["tables"] + 1, 3)
    assert after["size_bytes"] > before["size_bytes"] and after["synced_share"] is None
    again = client.post("/api/v1/databricks/initialize", headers=admin.headers)
    assert again.status_code == 200 and again.json()["catalog_exists"] is True
    health = client.get("/api/v1/databricks/health")  # public
    assert health.status_code == 200 and health.json()["engine"] == "local"


def test_ready_checks_the_store_schema_and_the_engine(client: TestClient) -> None:
    ready = client.get("/api/v1/ready")
    assert ready.status_code == 200
    assert set(ready.json()["checks"]) == {"store", "engine", "migrations"}
    assert client.get("/ready").status_code == 200 and client.get("/health").status_code == 200


@pytest.fixture
def tight_client(tmp_path: Path) -> Iterator[tuple[TestClient, Services]]:
    settings = Settings(
        home=tmp_path / "tight",
        ingest={"max_upload_bytes": 64 * 1024},
        api={"max_body_bytes": 4096, "query_rate_limit": "3/minute"},
        _env_file=None,  # type: ignore[call-arg]  # pydantic-settings option
    )
    services = Services.open(settings)
    try:
        with TestClient(create_app(settings, services=services)) as c:
            yield c, services
    finally:
        services.close()


def test_bodies_over_their_limit_get_413(tight_client: tuple[TestClient, Services]) -> None:
    client, services = tight_client
    admin = login(client, services, "acme")
    too_big = b"id\n" + b"1\n" * 40_000
    refused = client.post("/api/v1/datasets", headers=admin.headers, files={"file": ("t.csv", too_big, "text/csv")})
    assert refused.status_code == 413 and refused.json()["code"] == "limit_exceeded"
    assert upload(client, admin.headers, "small", SALES_CSV)["rows"] == 3

    def upload_chunks() -> Iterator[bytes]:  # a multipart body without Content-Length, past the limit
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n\r\nid\n'
        for _ in range(40):
            yield b"1\n" * 32_768
        yield b"\r\n--b--\r\n"

    streamed_upload = client.post(
        "/api/v1/datasets",
        content=upload_chunks(),
        headers={**admin.headers, "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert streamed_upload.status_code == 413 and streamed_upload.json()["code"] == "limit_exceeded"
    assert not list((services.settings.resolved_home / "tmp" / "uploads").iterdir())
    long_sql = client.post("/api/v1/query", json={"sql": "SELECT 1 -- " + "x" * 5000}, headers=admin.headers)
    assert long_sql.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"sql": "SELECT 1 -- '
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    streamed = client.post(
        "/api/v1/query", content=chunks(), headers={**admin.headers, "Content-Type": "application/json"}
    )
    assert streamed.status_code == 413


def test_queries_are_rate_limited_per_principal_with_retry_after(tight_client: tuple[TestClient, Services]) -> None:
    client, services = tight_client
    first, second = login(client, services, "acme"), login(client, services, "acme")
    codes = [
        client.post("/api/v1/query", json={"sql": "SELECT 1"}, headers=first.headers).status_code for _ in range(4)
    ]
    assert codes == [200, 200, 200, 429]
    limited = client.post("/api/v1/query", json={"sql": "SELECT 1"}, headers=first.headers)
    assert limited.json()["code"] == "rate_limited" and int(limited.headers["retry-after"]) >= 1
    assert client.post("/api/v1/query", json={"sql": "SELECT 1"}, headers=second.headers).status_code == 200


def test_mcp_query_sql_shares_the_rest_query_limit_of_its_principal(tight_client: tuple[TestClient, Services]) -> None:
    client, services = tight_client
    admin = login(client, services, "acme")
    assert client.post("/api/v1/query", json={"sql": "SELECT 1"}, headers=admin.headers).status_code == 200
    assert _mcp_query(client, admin.headers).get("isError") is False
    assert _mcp_query(client, admin.headers).get("isError") is False
    refused = _mcp_query(client, admin.headers)
    assert refused["isError"] is True and refused["_meta"][ERROR_META_KEY]["code"] == "rate_limited"
    assert client.post("/api/v1/query", json={"sql": "SELECT 1"}, headers=admin.headers).status_code == 429


def _mcp_query(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    """One ``query_sql`` call over the /mcp door (stateless: no session to open first)."""
    answer = client.post(
        "/mcp",
        headers={**headers, "Accept": "application/json, text/event-stream", "Host": "localhost"},
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "query_sql", "arguments": {"sql": "SELECT 1 AS one"}},
        },
    )
    assert answer.status_code == 200, answer.text
    data = next(line for line in answer.text.splitlines() if line.startswith("data:"))
    result: dict[str, Any] = json.loads(data.removeprefix("data:"))["result"]
    return result


def test_framework_errors_come_as_problem_documents_too(client: TestClient) -> None:
    for method, path, status, code in (
        ("GET", "/api/v1/no-such-thing", 404, "not_found"),
        ("PUT", "/api/v1/query", 405, "method_not_allowed"),
    ):
        answer = client.request(method, path)
        assert answer.status_code == status
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["code"] == code and answer.json()["request_id"] == answer.headers["x-request-id"]
