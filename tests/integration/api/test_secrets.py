"""A data source's password appears in no response, log line or error."""

from __future__ import annotations

import logging
import uuid

import pytest
from fastapi.testclient import TestClient

from servicetsunami import logs
from servicetsunami.services.container import Services
from tests.integration.api.support import data_source_body, login, pg_table

pytestmark = pytest.mark.postgres


def test_a_planted_password_never_leaves_the_store(
    client: TestClient, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    planted = "planted-Secret-" + uuid.uuid4().hex
    caplog.set_level(logging.DEBUG)
    admin = login(client, services, "acme")
    texts: list[str] = []
    with pg_table() as table:
        made = client.post("/api/v1/data-sources", json=data_source_body("pg", password=planted), headers=admin.headers)
        assert made.status_code == 201 and made.json()["has_password"] is True
        source_id = made.json()["id"]
        texts.append(made.text)
        for method, path, body in [
            ("GET", "/api/v1/data-sources", None),
            ("GET", f"/api/v1/data-sources/{source_id}", None),
            ("POST", f"/api/v1/data-sources/{source_id}/test", None),
            ("GET", f"/api/v1/data-sources/{source_id}/tables", None),
            ("POST", f"/api/v1/data-sources/{source_id}/syncs", {"table_name": table, "wait_seconds": 30}),
            ("GET", f"/api/v1/data-sources/{source_id}/syncs", None),
            ("POST", f"/api/v1/data-sources/{source_id}/syncs", {"table_name": "public.no_such_table"}),
            ("GET", "/api/v1/databricks/usage", None),
        ]:
            texts.append(client.request(method, path, json=body, headers=admin.headers).text)
        # Errors: a duplicate name, a bad port, an unreachable host, all with the password in the request.
        for body in (
            data_source_body("pg", password=planted),
            data_source_body("pg2", password=planted, port=70000),
            data_source_body("pg3", password=planted, host="127.0.0.1", port=1),
            data_source_body("pg4", password=planted, host="no-such-host.invalid"),
        ):
            texts.append(client.post("/api/v1/data-sources", json=body, headers=admin.headers).text)
    assert "password" in texts[0] or "has_password" in texts[0]
    assert all(planted not in text for text in texts)
    formatted = "\n".join(logs.redact(record.getMessage()) for record in caplog.records)
    assert planted not in formatted and planted not in caplog.text
    with services.store.session() as session:
        from servicetsunami.store.models import AuditLog, Connection

        assert all(planted not in str(row.meta) for row in session.query(AuditLog))
        assert all(planted not in str(row.config) for row in session.query(Connection))
