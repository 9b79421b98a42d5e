"""Errors of ours over REST answer with the status and code their class carries."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from servicetsunami.api.app import create_app
from servicetsunami.services.catalog import datasets
from servicetsunami.services.container import Services
from tests.integration.api.support import login

# Nothing listens on port 1 of the loopback: the connection is refused at once.
UNREACHABLE = {"name": "gone", "host": "127.0.0.1", "port": 1, "database": "x", "user": "x", "sslmode": "disable"}


def test_a_source_that_refuses_the_connection_answers_with_the_status_of_its_class(
    client: TestClient, services: Services
) -> None:
    admin = login(client, services, "acme")
    created = client.post("/api/v1/data-sources", json=UNREACHABLE, headers=admin.headers)
    assert created.status_code == 201, created.text
    tables = client.get(f"/api/v1/data-sources/{created.json()['id']}/tables", headers=admin.headers)
    assert tables.headers["content-type"].startswith("application/problem+json")
    # 502 like an engine failure: an upstream failed, not the service (500) nor the request (4xx).
    assert (tables.status_code, tables.json()["code"]) == (502, "source_error")


def _form(file_name: str, *, field: bytes = b"", closed: bool = True) -> bytes:
    fields = b'--b\r\nContent-Disposition: form-data; name="name"\r\n\r\n' + field + b"\r\n" if field else b""
    part = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="' + file_name.encode() + b'"\r\n\r\na,b\n1,2\n'
    )
    return fields + part + (b"\r\n--b--\r\n" if closed else b"")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (_form("a" * 10_000 + ".csv"), 413, "limit_exceeded"),
        (_form("a" * 300 + ".csv"), 413, "limit_exceeded"),
        (_form("ok.csv", field=b"x" * 70_000), 413, "limit_exceeded"),
        (b"garbage", 400, "invalid_input"),
        (b"--b\r\n\x00\x01\r\n\r\n", 400, "invalid_input"),
        (_form("ok.csv", closed=False), 400, "invalid_input"),
    ],
    ids=["file-name-10000", "file-name-300", "long-field", "no-boundary", "bad-header", "cut-off"],
)
def test_a_malformed_or_oversize_upload_form_is_refused_with_a_4xx_and_its_request_id(
    services: Services, body: bytes, status: int, code: str
) -> None:
    with TestClient(create_app(services.settings, services=services), raise_server_exceptions=False) as client:
        admin = login(client, services, "acme")
        headers = {**admin.headers, "Content-Type": "multipart/form-data; boundary=b"}
        answer = client.post("/api/v1/datasets", content=body, headers=headers)
    assert (answer.status_code, answer.json()["code"]) == (status, code)
    assert answer.json()["request_id"] == answer.headers["x-request-id"] != "-"
    assert not list((services.settings.resolved_home / "tmp" / "uploads").iterdir())


def test_an_unexpected_failure_is_a_masked_500_with_its_request_id_and_headers(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire at /srv/secret/path")

    monkeypatch.setattr(datasets, "list_datasets", broken)
    with TestClient(create_app(services.settings, services=services), raise_server_exceptions=False) as client:
        admin = login(client, services, "acme")
        answer = client.get("/api/v1/datasets", headers={**admin.headers, "X-Request-ID": "trace-me-42"})
    assert (answer.status_code, answer.json()["code"]) == (500, "internal_error")
    assert answer.json()["request_id"] == answer.headers["x-request-id"] == "trace-me-42"
    assert answer.headers["x-content-type-options"] == "nosniff" and answer.headers["cache-control"] == "no-store"
    assert "disk on fire" not in answer.text


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"sql": "SELECT 1", "max_rows": 0}, "max_rows must be greater than or equal to 1 (got 0)"),
        ({}, "sql is required"),
        ({"sql": 5}, "sql must be a valid string (got 5)"),
    ],
)
def test_a_request_body_that_does_not_fit_is_explained_without_pydantic_internals(
    client: TestClient, services: Services, body: dict[str, object], said: str
) -> None:
    admin = login(client, services, "acme")
    response = client.post("/api/v1/query", json=body, headers=admin.headers)
    assert (response.status_code, response.json()["code"]) == (422, "invalid_input")
    assert said in response.json()["detail"]
    assert "pydantic" not in response.text and "body." not in response.text
