"""Long statements (execute_dbsql, /api/v1/statements): submitted, polled, read in chunks, canceled
(the engine's work really stops), kept for a while and then CLOSED, and never another tenant's; on
the local engine and on Databricks (the fake, driven by the official SDK)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fastmcp import Client

from servicetsunami.api.app import create_app
from servicetsunami.errors import Conflict, NotFound, TsunamiError
from servicetsunami.mcp.server import build_mcp_server
from servicetsunami.services.catalog import statements
from servicetsunami.services.catalog.statements import StatementPublic
from servicetsunami.services.container import Services
from servicetsunami.settings import DatabricksSettings, QuerySettings, Settings, StatementsSettings
from servicetsunami.tenancy import Principal
from tests.fakes.databricks.server import FakeDatabricks
from tests.helpers import make_principal

FOREVER = "SELECT count(*) AS n FROM range(1000000000) a, range(1000000000) b"
FIVE_ROWS = "SELECT x FROM VALUES (1), (2), (3), (4), (5) AS t(x) ORDER BY x"
DEADLINE = 20.0


def _settings(home: Path, **extra: Any) -> Settings:
    return Settings(  # type: ignore[call-arg]  # _env_file is a pydantic-settings option
        home=home,
        query=QuerySettings(timeout_seconds=600, result_cache_mb=0),
        statements=StatementsSettings(chunk_rows=2),
        _env_file=None,
        **extra,
    )


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Services]:
    svc = Services.open(_settings(tmp_path / "home"))
    try:
        yield svc
    finally:
        svc.close()


@pytest.fixture
def databricks(tmp_path: Path, fake_workspace: DatabricksSettings) -> Iterator[Services]:
    svc = Services.open(_settings(tmp_path / "db-home", engine="databricks", databricks=fake_workspace))
    try:
        yield svc
    finally:
        svc.close()


def statements_of(svc: Services, principal: Principal) -> int:
    from servicetsunami.services.runs import service as runs

    return len(runs.list_runs(svc, principal, kind=statements.KIND))


def _until(check: Callable[[], StatementPublic], done: Callable[[StatementPublic], bool]) -> StatementPublic:
    deadline = time.monotonic() + DEADLINE
    while True:
        current = check()
        if done(current) or time.monotonic() > deadline:
            return current
        time.sleep(0.05)


def _submitted_polled_read_in_chunks_and_a_long_one_canceled(svc: Services, principal: Principal) -> None:
    done = statements.execute_statement(svc, principal, FIVE_ROWS, wait_seconds=0)
    done = _until(lambda: statements.get_statement(svc, principal, done.statement_id), lambda s: s.manifest is not None)
    assert done.status.state == "SUCCEEDED" and done.manifest is not None and done.result is not None
    assert done.manifest.total_row_count == 5 and done.manifest.total_chunk_count == 3
    assert [c.row_offset for c in done.manifest.chunks] == [0, 2, 4]
    chunks = [done.result]
    while chunks[-1].next_chunk_index is not None:
        index = chunks[-1].next_chunk_index
        chunks.append(statements.get_statement_chunk(svc, principal, done.statement_id, index))
    assert [row for chunk in chunks for row in chunk.data_array] == [[1], [2], [3], [4], [5]]
    with pytest.raises(NotFound):
        statements.get_statement_chunk(svc, principal, done.statement_id, 3)

    long = statements.execute_statement(svc, principal, FOREVER, wait_seconds=1)
    assert long.status.state in ("PENDING", "RUNNING") and long.manifest is None and long.hint
    running = _until(
        lambda: statements.get_statement(svc, principal, long.statement_id), lambda s: s.status.state == "RUNNING"
    )
    assert running.status.state == "RUNNING"
    started = time.monotonic()
    canceled = statements.cancel_statement(svc, principal, long.statement_id)
    canceled = _until(
        lambda: statements.get_statement(svc, principal, long.statement_id), lambda s: s.status.state == "CANCELED"
    )
    assert canceled.status.state == "CANCELED" and time.monotonic() - started < DEADLINE
    with pytest.raises(Conflict):
        statements.get_statement_chunk(svc, principal, long.statement_id, 0)
    # The engine is free again: the canceled statement's work stopped.
    after = statements.execute_statement(svc, principal, "SELECT 1 AS one", wait_seconds=10)
    assert after.status.state == "SUCCEEDED" and after.result is not None and after.result.data_array == [[1]]
    assert statements.cancel_statement(svc, principal, after.statement_id).status.state == "SUCCEEDED"


def test_a_long_statement_is_submitted_polled_read_in_chunks_and_canceled_locally(local: Services) -> None:
    _submitted_polled_read_in_chunks_and_a_long_one_canceled(local, make_principal(local, "acme", "analyst")[0])


def test_a_long_statement_is_submitted_polled_read_in_chunks_and_canceled_on_databricks(
    databricks: Services, databricks_fake: FakeDatabricks, fake_workspace: DatabricksSettings
) -> None:
    acme = make_principal(databricks, "acme", "analyst")[0]
    _submitted_polled_read_in_chunks_and_a_long_one_canceled(databricks, acme)
    assert fake_workspace.token is not None
    warehouse = databricks_fake.state(fake_workspace.token.get_secret_value())
    long = [s for s in warehouse.statements.values() if "1000000000" in s.sql]
    assert long and all(s.state == "CANCELED" for s in long)  # canceled through the API, not only here


def test_another_tenants_statement_and_other_runs_are_not_found(local: Services) -> None:
    acme = make_principal(local, "acme", "analyst")[0]
    globex = make_principal(local, "globex", "analyst")[0]
    mine = statements.execute_statement(local, acme, "SELECT 1 AS one", wait_seconds=10)
    for call in (statements.get_statement, statements.cancel_statement):
        with pytest.raises(NotFound):
            call(local, globex, mine.statement_id)
    with pytest.raises(NotFound):
        statements.get_statement_chunk(local, globex, mine.statement_id, 0)


def test_a_refused_statement_is_refused_before_it_is_queued(local: Services) -> None:
    acme = make_principal(local, "acme", "analyst")[0]
    with pytest.raises(TsunamiError) as refused:
        statements.execute_statement(local, acme, "DROP TABLE bronze.sales", wait_seconds=0)
    assert refused.value.code == "query_refused"
    with pytest.raises(TsunamiError) as elsewhere:
        statements.execute_statement(local, acme, "SELECT * FROM tenant_globex.bronze.t", wait_seconds=0)
    assert elsewhere.value.code == "permission_denied"
    assert statements_of(local, acme) == 0


def test_a_failed_statement_says_why_with_its_code(local: Services) -> None:
    acme = make_principal(local, "acme", "analyst")[0]
    failed = statements.execute_statement(local, acme, "SELECT * FROM bronze.missing", wait_seconds=10)
    assert failed.status.state == "FAILED" and failed.status.error is not None
    assert failed.status.error.error_code in ("not_found", "query_refused", "invalid_input")


def test_a_result_is_removed_after_it_was_kept_and_the_statement_says_closed(tmp_path: Path) -> None:
    svc = Services.open(
        _settings(tmp_path / "home").model_copy(update={"statements": StatementsSettings(keep_seconds=0.5)})
    )
    try:
        acme = make_principal(svc, "acme", "analyst")[0]
        done = statements.execute_statement(svc, acme, "SELECT 1 AS one", wait_seconds=10)
        assert done.status.state == "SUCCEEDED"
        closed = _until(
            lambda: statements.get_statement(svc, acme, done.statement_id), lambda s: s.status.state == "CLOSED"
        )
        assert closed.status.state == "CLOSED" and closed.result is None
        statements._forget_old_results(svc)  # what the ticker does
        with svc.store.session() as session:
            from servicetsunami.store.repositories import runs as runs_repo

            assert runs_repo.get_run(session, done.statement_id, tenant_id=acme.tenant_id).result is None
    finally:
        svc.close()


def test_rest_speaks_the_statement_execution_shapes(local: Services) -> None:
    _, key = make_principal(local, "acme", "analyst")
    _, other = make_principal(local, "globex", "analyst")
    headers = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(local.settings, services=local)) as client:
        done = client.post("/api/v1/statements", json={"statement": FIVE_ROWS, "wait_timeout": "10s"}, headers=headers)
        assert done.status_code == 200, done.text
        body = done.json()
        assert body["status"]["state"] == "SUCCEEDED" and body["manifest"]["schema"]["columns"][0]["name"] == "x"
        assert body["result"]["data_array"] == [[1], [2]] and body["result"]["next_chunk_index"] == 1
        chunk = client.get(f"/api/v1/statements/{body['statement_id']}/result/chunks/2", headers=headers)
        assert chunk.json()["data_array"] == [[5]] and chunk.json()["next_chunk_index"] is None
        long = client.post("/api/v1/statements", json={"statement": FOREVER, "wait_timeout": "0s"}, headers=headers)
        statement_id = long.json()["statement_id"]
        assert long.json()["status"]["state"] in ("PENDING", "RUNNING")
        assert (
            client.get(f"/api/v1/statements/{statement_id}", headers={"Authorization": f"Bearer {other}"}).status_code
            == 404
        )
        canceled = client.post(f"/api/v1/statements/{statement_id}/cancel", headers=headers)
        assert canceled.json()["status"]["state"] == "CANCELED"
        gave_up = client.post(
            "/api/v1/statements",
            json={"statement": FOREVER, "wait_timeout": "5s", "on_wait_timeout": "CANCEL"},
            headers=headers,
        )
        assert gave_up.json()["status"]["state"] == "CANCELED"
        wrong = client.post("/api/v1/statements", json={"statement": FIVE_ROWS, "wait_timeout": "3s"}, headers=headers)
        assert wrong.status_code == 422


async def test_mcp_runs_polls_and_cancels_statements(local: Services) -> None:
    acme = make_principal(local, "acme", "analyst")[0]
    async with Client(build_mcp_server(local, principal=acme)) as client:
        done = await client.call_tool_mcp("execute_dbsql", {"sql": FIVE_ROWS, "wait_seconds": 10})
        body = json.loads(done.content[0].text)  # type: ignore[union-attr]  # text content
        assert body["status"]["state"] == "SUCCEEDED"
        second = await client.call_tool_mcp("get_statement", {"statement_id": body["statement_id"], "chunk_index": 1})
        assert second.structured_content is not None and second.structured_content["result"]["data_array"] == [[3], [4]]
        long = await client.call_tool_mcp("execute_dbsql", {"sql": FOREVER, "wait_seconds": 0})
        assert long.structured_content is not None
        canceled = await client.call_tool_mcp(
            "cancel_statement", {"statement_id": long.structured_content["statement_id"]}
        )
        assert canceled.structured_content is not None and canceled.structured_content["status"]["state"] == "CANCELED"
