"""Errors of ours over REST answer with the status and code their class carries."""

from __future__ import annotations

from fastapi.testclient import TestClient

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
