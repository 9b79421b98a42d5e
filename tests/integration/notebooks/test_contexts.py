"""Command execution contexts: state persists between commands, results are typed, a command can be
cancelled, a tenant's contexts are its own and limited in number, idle ones are reaped."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from servicetsunami.api.app import create_app
from servicetsunami.errors import LimitExceeded, NotFound
from servicetsunami.services.container import Services
from servicetsunami.services.ingestion.uploads import upload_file
from servicetsunami.services.notebooks import contexts
from servicetsunami.tenancy import Principal
from tests.helpers import make_principal
from tests.integration.api.support import login
from tests.integration.mcp.support import local_client

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _no_kernel_left(services: Services) -> Iterator[None]:
    yield
    contexts.close_all(services)


def run(services: Services, principal: Principal, context_id: str, code: str) -> contexts.CommandPublic:
    queued = contexts.execute_command(services, principal, context_id, code)
    return contexts.wait_command(services, principal, context_id, queued.id, timeout=60)


def test_state_persists_between_commands_and_results_are_typed(services: Services, acme: Principal) -> None:
    upload_file(services, acme, file_name="s.csv", dataset_name="s", content=b"a,b\n1,x\n2,y\n")
    ctx = contexts.create_context(services, acme)
    assert run(services, acme, ctx.id, "x = 41").status == "Finished"
    answer = run(services, acme, ctx.id, "print(x + 1)")
    assert answer.results is not None and (answer.results.resultType, answer.results.data) == ("text", "42")
    table = run(services, acme, ctx.id, "display(spark.table('bronze.s').select('a', 'b').orderBy('a'))")
    assert table.results is not None and table.results.resultType == "table"
    assert table.results.data == [[1, "x"], [2, "y"]]
    failed = run(services, acme, ctx.id, "1 / 0")
    assert failed.status == "Error"
    assert failed.results is not None and failed.results.resultType == "error"
    assert failed.results.cause is not None and "ZeroDivisionError" in failed.results.cause


def test_a_sql_context_runs_sql(services: Services, acme: Principal) -> None:
    ctx = contexts.create_context(services, acme, language="sql")
    answer = run(services, acme, ctx.id, "SELECT 6 * 7 AS n")
    assert answer.results is not None and answer.results.data == [[42]]


def test_a_running_command_is_cancelled_and_the_context_keeps_its_state(services: Services, acme: Principal) -> None:
    ctx = contexts.create_context(services, acme)
    run(services, acme, ctx.id, "kept = 'yes'")
    queued = contexts.execute_command(services, acme, ctx.id, "import time\nwhile True:\n    time.sleep(0.05)")
    deadline = time.monotonic() + 30
    while contexts.get_command_status(services, acme, ctx.id, queued.id).status != "Running":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert contexts.cancel_command(services, acme, ctx.id, queued.id).status == "Cancelled"
    after = run(services, acme, ctx.id, "print(kept)")
    assert after.results is not None and after.results.data == "yes"


def test_destroying_a_context_stops_its_running_command_before_the_kernel_closes(
    services: Services, acme: Principal
) -> None:
    ctx = contexts.create_context(services, acme)
    queued = contexts.execute_command(services, acme, ctx.id, "import time\nwhile True:\n    time.sleep(0.05)")
    deadline = time.monotonic() + 30
    while contexts.get_command_status(services, acme, ctx.id, queued.id).status != "Running":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    contexts.destroy_context(services, acme, ctx.id)
    running = [t for t in threading.enumerate() if t.name == f"command-{queued.id[:8]}"]
    assert running == []  # its thread was done with the kernel's sockets before they closed
    with pytest.raises(NotFound):
        contexts.context_status(services, acme, ctx.id)


def test_another_tenant_cannot_use_a_context(services: Services, acme: Principal, globex: Principal) -> None:
    ctx = contexts.create_context(services, acme)
    with pytest.raises(NotFound):
        contexts.execute_command(services, globex, ctx.id, "print(1)")
    with pytest.raises(NotFound):
        contexts.destroy_context(services, globex, ctx.id)


def test_another_worker_answers_not_found_naming_the_worker_that_holds_the_context(
    services: Services, acme: Principal
) -> None:
    ctx = contexts.create_context(services, acme)
    assert ctx.id.startswith(ctx.worker + "-")
    other = Services.open(services.settings)  # a second worker process on the same store
    try:
        with pytest.raises(NotFound) as info:
            contexts.execute_command(other, acme, ctx.id, "1 + 1")
        assert ctx.worker in info.value.message
        with pytest.raises(NotFound) as unknown:
            contexts.context_status(services, acme, ctx.worker + "-" + "0" * 32)  # its own worker: just gone
        assert ctx.worker not in unknown.value.message
    finally:
        other.close()
    assert run(services, acme, ctx.id, "print(2)").status == "Finished"


def test_a_tenant_has_a_limited_number_of_live_contexts(services: Services, acme: Principal) -> None:
    services.settings.sandbox.max_contexts_per_tenant = 1
    ctx = contexts.create_context(services, acme)
    with pytest.raises(LimitExceeded) as info:
        contexts.create_context(services, acme)
    assert info.value.code == "limit_exceeded"
    contexts.destroy_context(services, acme, ctx.id)
    contexts.create_context(services, acme)


def test_idle_contexts_are_reaped(services: Services, acme: Principal) -> None:
    ctx = contexts.create_context(services, acme)
    services.settings.sandbox.context_idle_seconds = 0.05
    deadline = time.monotonic() + 30
    while contexts.reap_idle(services) == 0:
        assert time.monotonic() < deadline, "the idle context was never reaped"
    with pytest.raises(NotFound):
        contexts.context_status(services, acme, ctx.id)


async def test_contexts_over_mcp(services: Services) -> None:
    _, key = make_principal(services, "acme", role="engineer")
    async with local_client(services, key) as client:
        made = await client.call_tool("create_context", {})
        context_id = made.structured_content["id"]  # type: ignore[index]
        await client.call_tool("execute_command", {"context_id": context_id, "command": "y = 20"})
        answer = await client.call_tool(
            "execute_command", {"context_id": context_id, "command": "print(y + 22)", "wait_seconds": 30}
        )
        assert answer.structured_content["results"]["data"] == "42"  # type: ignore[index]
        await client.call_tool("destroy_context", {"context_id": context_id})


def test_contexts_over_rest(services: Services) -> None:
    with TestClient(create_app(services.settings, services=services)) as client:
        acme = login(client, services, "acme")
        made = client.post("/api/v1/contexts", json={"language": "python"}, headers=acme.headers)
        assert made.status_code == 201, made.text
        context_id = made.json()["id"]
        queued = client.post(f"/api/v1/contexts/{context_id}/commands", json={"command": "6 * 7"}, headers=acme.headers)
        assert queued.status_code == 202
        url = f"/api/v1/contexts/{context_id}/commands/{queued.json()['id']}"
        done = client.get(url, params={"wait_seconds": 30}, headers=acme.headers).json()
        assert (done["status"], done["results"]["data"]) == ("Finished", "42")
        globex = login(client, services, "globex")
        assert client.get(url, headers=globex.headers).status_code == 404
        assert client.delete(f"/api/v1/contexts/{context_id}", headers=acme.headers).status_code == 204
        assert client.get(f"/api/v1/contexts/{context_id}", headers=acme.headers).status_code == 404
