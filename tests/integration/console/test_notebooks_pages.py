"""The console's notebook pages over the ASGI app, with real kernels in the sandbox: cells shown and
saved as a new version, a run with parameters whose cells show status and output, roles, tenants."""

from __future__ import annotations

from fastapi.testclient import TestClient

from servicetsunami.services.container import Services
from servicetsunami.services.notebooks import notebooks
from servicetsunami.services.notebooks import runs as notebook_runs
from tests.helpers import make_principal
from tests.integration.console.conftest import csrf_of, sign_in_as

DEADLINE = 120.0
CELLS = [
    {"source": 'dbutils.widgets.text("who", "world")'},
    {"source": 'print("hello " + dbutils.widgets.get("who"))'},
    {"source": "1 / 0"},
]


def test_a_notebook_runs_with_parameters_and_each_cell_shows_its_status_and_output(
    client: TestClient, services: Services
) -> None:
    owner = make_principal(services, "acme")[0]
    made = notebooks.create_notebook(services, owner, "/team/hello", cells=CELLS)
    sign_in_as(client, services, "acme", role="engineer")
    assert "/team/hello" in client.get("/notebooks").text
    page = client.get(f"/notebooks/{made.notebook_id}").text
    assert 'data-cell="2"' in page and "Execute" in page
    started = client.post(
        f"/notebooks/{made.notebook_id}/runs", data={"csrf_token": csrf_of(page), "parameters": "who=console\n"}
    )
    assert started.status_code == 303, started.text
    run_id = started.headers["location"].rsplit("/", 1)[1]
    run = notebook_runs.wait_notebook_run(services, owner, run_id, timeout=DEADLINE)
    assert run.run.state == "failed"
    shown = client.get(f"/notebooks/runs/{run_id}").text
    assert 'data-state="failed"' in shown
    cells = shown.split('<div class="cell ')[1:]  # as executed: the parameters are a cell of their own
    printed = next(c for c in cells if "hello console" in c)
    assert "state-succeeded" in printed
    assert "state-failed" in cells[-1] and "ZeroDivisionError" in cells[-1]
    assert run_id[:12] in client.get(f"/notebooks/{made.notebook_id}").text


def test_saving_cells_makes_a_new_version_and_a_stale_form_is_refused(client: TestClient, services: Services) -> None:
    owner = make_principal(services, "acme")[0]
    made = notebooks.create_notebook(services, owner, "/edit/me", cells=[{"source": "x = 1"}])
    sign_in_as(client, services, "acme", role="engineer")
    page = client.get(f"/notebooks/{made.notebook_id}").text
    form = {"csrf_token": csrf_of(page), "version": str(made.version), "cell_type": "code", "source": "x = 2"}
    assert client.post(f"/notebooks/{made.notebook_id}/cells", data=form).status_code == 303
    saved = notebooks.get_notebook(services, owner, made.notebook_id)
    assert saved.version == made.version + 1 and saved.cells[0].source == "x = 2"
    stale = client.post(f"/notebooks/{made.notebook_id}/cells", data={**form, "source": "x = 3"})
    assert stale.status_code == 409
    assert notebooks.get_notebook(services, owner, made.notebook_id).cells[0].source == "x = 2"


def test_parameters_that_are_not_name_value_lines_are_refused(client: TestClient, services: Services) -> None:
    owner = make_principal(services, "acme")[0]
    made = notebooks.create_notebook(services, owner, "/p", cells=[{"source": "x = 1"}])
    sign_in_as(client, services, "acme", role="engineer")
    page = client.get(f"/notebooks/{made.notebook_id}").text
    answer = client.post(
        f"/notebooks/{made.notebook_id}/runs", data={"csrf_token": csrf_of(page), "parameters": "no equals sign"}
    )
    assert answer.status_code == 400 and 'data-code="invalid_input"' in answer.text


def test_an_analyst_reads_cells_but_cannot_execute_or_save(client: TestClient, services: Services) -> None:
    owner = make_principal(services, "acme")[0]
    made = notebooks.create_notebook(services, owner, "/ro", cells=[{"source": "x = 1"}])
    sign_in_as(client, services, "acme", role="analyst")
    page = client.get(f"/notebooks/{made.notebook_id}").text
    assert "x = 1" in page and "readonly" in page and "Execute" not in page.split("<main")[1].split("Run history")[0]
    refused = client.post(f"/notebooks/{made.notebook_id}/runs", data={"csrf_token": csrf_of(page)})
    assert refused.status_code == 403


def test_another_tenants_notebook_is_not_found(client: TestClient, services: Services) -> None:
    owner = make_principal(services, "acme")[0]
    made = notebooks.create_notebook(services, owner, "/secret", cells=[{"source": "x = 1"}])
    sign_in_as(client, services, "globex")
    assert client.get(f"/notebooks/{made.notebook_id}").status_code == 404
    assert "/secret" not in client.get("/notebooks").text
