"""Execution contexts on the Databricks engine run on a cluster through the Command Execution API 1.2
(the SDK against the fake, whose contexts are real local kernels): the doors answer with the shapes
of the local contexts, the tenant's catalog is the context's, a tenant's contexts are its own, and a
missing or stopped cluster is refused with a code to act on. The fake is also driven with the
unmodified SDK directly, to pin its shapes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound as SdkNotFound
from databricks.sdk.service.compute import CommandStatus, ContextStatus, Language, ResultType
from fastapi.testclient import TestClient

from servicetsunami.api.app import create_app
from servicetsunami.errors import Conflict, InvalidInput, LimitExceeded, NotFound
from servicetsunami.services.container import Services
from servicetsunami.services.ingestion.uploads import upload_file
from servicetsunami.services.notebooks import contexts
from servicetsunami.settings import DatabricksSettings
from servicetsunami.tenancy import Principal
from tests.fakes.databricks.compute import DEFAULT_CLUSTER_ID, compute_of
from tests.fakes.databricks.server import FakeDatabricks
from tests.helpers import make_principal
from tests.integration.api.support import login
from tests.integration.mcp.support import local_client

pytestmark = pytest.mark.slow

LOOP = "import time\nwhile True:\n    time.sleep(0.05)"


@pytest.fixture
def dbx(on_databricks: Services) -> Iterator[Services]:
    """The service on Databricks, with the fake's cluster as the configured one."""
    on_databricks.settings.databricks.cluster_id = DEFAULT_CLUSTER_ID
    yield on_databricks
    contexts.close_all(on_databricks)


def _sdk(settings: DatabricksSettings) -> WorkspaceClient:
    assert settings.token is not None
    return WorkspaceClient(host=settings.host, token=settings.token.get_secret_value(), auth_type="pat")


def run(services: Services, principal: Principal, context_id: str, code: str) -> contexts.CommandPublic:
    queued = contexts.execute_command(services, principal, context_id, code)
    return contexts.wait_command(services, principal, context_id, queued.id, timeout=60)


def test_a_context_runs_on_the_cluster_keeps_state_and_reads_the_tenant_catalog(dbx: Services) -> None:
    acme, _ = make_principal(dbx, "acme", "engineer")
    upload_file(dbx, acme, file_name="s.csv", dataset_name="s", content=b"a,b\n1,x\n2,y\n")
    ctx = contexts.create_context(dbx, acme)
    assert (ctx.cluster_id, ctx.status) == (DEFAULT_CLUSTER_ID, "Running")
    assert run(dbx, acme, ctx.id, "x = 41").status == "Finished"
    answer = run(dbx, acme, ctx.id, "print(x + 1)")
    assert answer.results is not None and (answer.results.resultType, answer.results.data) == ("text", "42")
    table = run(dbx, acme, ctx.id, "display(spark.table('bronze.s').select('a', 'b').orderBy('a'))")
    assert table.results is not None and table.results.resultType == "table", table
    assert table.results.data == [[1, "x"], [2, "y"]]
    assert table.results.schema_ == [{"name": "a", "type": "BIGINT"}, {"name": "b", "type": "STRING"}]
    assert contexts.context_status(dbx, acme, ctx.id).commands == 3


def test_a_sql_context_answers_a_typed_table(dbx: Services) -> None:
    acme, _ = make_principal(dbx, "acme", "engineer")
    ctx = contexts.create_context(dbx, acme, language="sql")
    answer = run(dbx, acme, ctx.id, "SELECT 6 * 7 AS n, 'x' AS s")
    assert answer.status == "Finished"
    assert answer.results is not None and answer.results.data == [[42, "x"]]
    assert answer.results.schema_ == [{"name": "n", "type": "INT"}, {"name": "s", "type": "STRING"}]


def test_code_that_raises_is_an_error_whose_cause_shows_the_failing_line(dbx: Services) -> None:
    acme, _ = make_principal(dbx, "acme", "engineer")
    ctx = contexts.create_context(dbx, acme)
    failed = run(dbx, acme, ctx.id, "a = 1\nb = a / 0")
    assert failed.status == "Error"
    assert failed.results is not None and failed.results.resultType == "error"
    assert failed.results.summary is not None and "ZeroDivisionError" in failed.results.summary
    assert "<span" not in failed.results.summary
    assert failed.results.cause is not None and "b = a / 0" in failed.results.cause
    assert "\x1b[" not in failed.results.cause


def test_a_running_command_is_cancelled_and_the_context_keeps_its_state(dbx: Services) -> None:
    acme, _ = make_principal(dbx, "acme", "engineer")
    ctx = contexts.create_context(dbx, acme)
    run(dbx, acme, ctx.id, "kept = 'yes'")
    queued = contexts.execute_command(dbx, acme, ctx.id, LOOP)
    deadline = time.monotonic() + 30
    while contexts.get_command_status(dbx, acme, ctx.id, queued.id).status != "Running":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert contexts.cancel_command(dbx, acme, ctx.id, queued.id).status == "Cancelled"
    assert contexts.get_command_status(dbx, acme, ctx.id, queued.id).status == "Cancelled"
    after = run(dbx, acme, ctx.id, "print(kept)")
    assert after.results is not None and after.results.data == "yes"


def test_another_tenant_gets_not_found_and_a_destroyed_context_is_gone(
    dbx: Services, databricks_fake: FakeDatabricks, fake_workspace: DatabricksSettings
) -> None:
    acme, _ = make_principal(dbx, "acme", "engineer")
    globex, _ = make_principal(dbx, "globex", "engineer")
    ctx = contexts.create_context(dbx, acme)
    for call in (
        lambda: contexts.execute_command(dbx, globex, ctx.id, "print(1)"),
        lambda: contexts.context_status(dbx, globex, ctx.id),
        lambda: contexts.destroy_context(dbx, globex, ctx.id),
    ):
        with pytest.raises(NotFound):
            call()
    contexts.destroy_context(dbx, acme, ctx.id)
    with pytest.raises(NotFound):
        contexts.context_status(dbx, acme, ctx.id)
    assert not databricks_fake.state(fake_workspace.token.get_secret_value()).contexts  # type: ignore[union-attr]


def test_contexts_count_against_the_tenant_limit(dbx: Services) -> None:
    acme, _ = make_principal(dbx, "acme", "engineer")
    dbx.settings.sandbox.max_contexts_per_tenant = 1
    ctx = contexts.create_context(dbx, acme)
    with pytest.raises(LimitExceeded) as info:
        contexts.create_context(dbx, acme)
    assert info.value.code == "limit_exceeded"
    contexts.destroy_context(dbx, acme, ctx.id)


def test_without_a_cluster_a_context_is_refused_with_what_to_set(on_databricks: Services) -> None:
    acme, _ = make_principal(on_databricks, "acme", "engineer")
    with pytest.raises(InvalidInput) as info:
        contexts.create_context(on_databricks, acme)
    assert info.value.code == "invalid_input"
    assert "TSUNAMI_DATABRICKS__CLUSTER_ID" in info.value.message
    with pytest.raises(NotFound):
        contexts.create_context(on_databricks, acme, cluster_id="0000-000000-missing")


def test_a_stopped_cluster_is_a_conflict_unless_the_caller_asks_to_start_it(
    dbx: Services, databricks_fake: FakeDatabricks, fake_workspace: DatabricksSettings
) -> None:
    acme, _ = make_principal(dbx, "acme", "engineer")
    assert fake_workspace.token is not None
    state = databricks_fake.state(fake_workspace.token.get_secret_value())
    compute_of(state).clusters[DEFAULT_CLUSTER_ID].state = "TERMINATED"
    with pytest.raises(Conflict) as info:
        contexts.create_context(dbx, acme)
    assert "TERMINATED" in info.value.message
    ctx = contexts.create_context(dbx, acme, start_cluster=True)
    assert compute_of(state).clusters[DEFAULT_CLUSTER_ID].state == "RUNNING"
    assert run(dbx, acme, ctx.id, "print('up')").status == "Finished"


async def test_contexts_on_the_cluster_over_mcp(dbx: Services) -> None:
    _, key = make_principal(dbx, "acme", role="engineer")
    async with local_client(dbx, key) as client:
        made = await client.call_tool("create_context", {"cluster_id": DEFAULT_CLUSTER_ID})
        assert made.structured_content is not None
        assert made.structured_content["cluster_id"] == DEFAULT_CLUSTER_ID
        context_id = made.structured_content["id"]
        await client.call_tool("execute_command", {"context_id": context_id, "command": "y = 20"})
        answer = await client.call_tool(
            "execute_command", {"context_id": context_id, "command": "print(y + 22)", "wait_seconds": 30}
        )
        assert answer.structured_content is not None
        assert answer.structured_content["results"]["data"] == "42"
        await client.call_tool("destroy_context", {"context_id": context_id})


def test_contexts_on_the_cluster_over_rest(dbx: Services) -> None:
    with TestClient(create_app(dbx.settings, services=dbx)) as client:
        acme = login(client, dbx, "acme")
        made = client.post("/api/v1/contexts", json={"language": "sql"}, headers=acme.headers)
        assert made.status_code == 201, made.text
        context_id = made.json()["id"]
        queued = client.post(
            f"/api/v1/contexts/{context_id}/commands", json={"command": "SELECT 6 * 7 AS n"}, headers=acme.headers
        )
        assert queued.status_code == 202, queued.text
        url = f"/api/v1/contexts/{context_id}/commands/{queued.json()['id']}"
        done = client.get(url, params={"wait_seconds": 30}, headers=acme.headers).json()
        assert (done["status"], done["results"]["resultType"], done["results"]["data"]) == ("Finished", "table", [[42]])
        globex = login(client, dbx, "globex")
        assert client.get(url, headers=globex.headers).status_code == 404
        assert client.delete(f"/api/v1/contexts/{context_id}", headers=acme.headers).status_code == 204
        assert client.get(f"/api/v1/contexts/{context_id}", headers=acme.headers).status_code == 404
        missing = client.post("/api/v1/contexts", json={"cluster_id": "0000-000000-missing"}, headers=acme.headers)
        assert missing.status_code == 404


def test_the_fake_serves_the_command_execution_api_to_the_sdk(fake_workspace: DatabricksSettings) -> None:
    api = _sdk(fake_workspace).command_execution
    wait = timedelta(seconds=60)
    ctx = api.create_and_wait(cluster_id=DEFAULT_CLUSTER_ID, language=Language.PYTHON, timeout=wait)
    assert ctx.status == ContextStatus.RUNNING and ctx.id
    cluster, context_id = DEFAULT_CLUSTER_ID, ctx.id
    api.execute_and_wait(cluster_id=cluster, context_id=context_id, language=Language.PYTHON, command="v = 7")
    text = api.execute_and_wait(
        cluster_id=cluster, context_id=context_id, language=Language.PYTHON, command="print(v * 6)", timeout=wait
    )
    assert text.status == CommandStatus.FINISHED and text.results is not None
    assert (text.results.result_type, text.results.data) == (ResultType.TEXT, "42")
    table = api.execute_and_wait(
        cluster_id=cluster, context_id=context_id, language=Language.SQL, command="SELECT 1 AS one", timeout=wait
    )
    assert table.results is not None and table.results.result_type == ResultType.TABLE
    assert table.results.data == [[1]] and table.results.is_json_schema
    assert table.results.schema == [{"name": "one", "type": '"integer"', "metadata": "{}"}]
    error = api.execute_and_wait(
        cluster_id=cluster, context_id=context_id, language=Language.PYTHON, command="1 / 0", timeout=wait
    )
    assert error.status == CommandStatus.FINISHED  # the code raised; the environment did not fail
    assert error.results is not None and error.results.result_type == ResultType.ERROR
    assert error.results.cause is not None and "ZeroDivisionError" in error.results.cause
    long = api.execute(cluster_id=cluster, context_id=context_id, language=Language.PYTHON, command=LOOP)
    deadline = time.monotonic() + 30
    while api.command_status(cluster, context_id, long.command_id).status != CommandStatus.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    cancelled = api.cancel_and_wait(cluster_id=cluster, context_id=context_id, command_id=long.command_id, timeout=wait)
    assert cancelled.status == CommandStatus.CANCELLED
    api.destroy(cluster, context_id)
    with pytest.raises(SdkNotFound):
        api.context_status(cluster, context_id)
