"""The console's pipeline pages over the ASGI app: the DAG, running with parameters, a run's tasks
while it runs and after, cancel and repair, roles and tenants."""

from __future__ import annotations

from fastapi.testclient import TestClient

from servicetsunami.api.app import create_app
from servicetsunami.services.container import Services
from servicetsunami.services.pipelines import job_runs, jobs
from servicetsunami.settings import DatabricksSettings
from servicetsunami.tenancy import Principal
from tests.helpers import make_principal
from tests.integration.console.conftest import csrf_of, sign_in_as
from tests.integration.pipelines.support import create, sql_task, wait_end


def _job(services: Services, *, broken: bool = False) -> tuple[str, Principal]:
    owner = make_principal(services, "acme")[0]
    source = "silver.missing_table" if broken else "(SELECT 1 AS one)"
    job_id = create(
        services,
        owner,
        "nightly",
        [
            sql_task("extract", "CREATE OR REPLACE TABLE silver.raw AS SELECT 1 AS one"),
            sql_task("clean", f"CREATE OR REPLACE TABLE silver.clean AS SELECT * FROM {source}", "extract"),
            sql_task("report", "CREATE OR REPLACE TABLE gold.report AS SELECT 1 AS one", "clean"),
        ],
        parameters={"region": "north"},
    )
    return job_id, owner


def test_a_job_shows_its_tasks_in_dependency_order_and_runs_with_the_parameters_given(
    client: TestClient, services: Services
) -> None:
    job_id, owner = _job(services)
    sign_in_as(client, services, "acme", role="engineer")
    assert "nightly" in client.get("/pipelines").text
    page = client.get(f"/pipelines/{job_id}")
    html = page.text
    assert html.index('data-task="extract"') < html.index('data-task="clean"') < html.index('data-task="report"')
    started = client.post(f"/pipelines/{job_id}/runs", data={"csrf_token": csrf_of(html), "param.region": "south"})
    assert started.status_code == 303
    run_id = started.headers["location"].rsplit("/", 1)[1]
    run = wait_end(services, owner, run_id)
    assert run.state == "succeeded" and run.parameters == {"region": "south"}
    finished = client.get(f"/pipelines/runs/{run_id}").text
    assert 'data-state="succeeded"' in finished
    assert "hx-trigger" not in finished.split('id="run"')[1].split(">")[0]  # a finished run stops polling
    assert run_id[:12] in client.get(f"/pipelines/{job_id}").text  # in the job's history


def test_a_failed_run_names_its_task_and_error_and_can_be_repaired(client: TestClient, services: Services) -> None:
    job_id, owner = _job(services, broken=True)
    run_id = job_runs.start_job_run(services, owner, job_id)
    assert wait_end(services, owner, run_id).state == "failed"
    sign_in_as(client, services, "acme", role="engineer")
    page = client.get(f"/pipelines/runs/{run_id}").text
    assert 'data-state="failed"' in page and "Repair run" in page
    row = page.split('<tr data-task="clean">')[1].split("</tr>")[0]
    assert "failed" in row and 'class="error"' in row
    repaired = client.post(f"/pipelines/runs/{run_id}/repair", data={"csrf_token": csrf_of(page)})
    assert repaired.status_code == 303
    assert wait_end(services, owner, run_id).repair == 1


def test_an_analyst_sees_runs_but_no_run_button_and_the_server_refuses_one(
    client: TestClient, services: Services
) -> None:
    job_id, _ = _job(services)
    sign_in_as(client, services, "acme", role="analyst")
    page = client.get(f"/pipelines/{job_id}").text
    assert "Run pipeline" not in page
    refused = client.post(f"/pipelines/{job_id}/runs", data={"csrf_token": csrf_of(page)})
    assert refused.status_code == 403 and 'data-code="permission_denied"' in refused.text


def test_another_tenants_job_and_run_are_not_found(client: TestClient, services: Services) -> None:
    job_id, owner = _job(services)
    sign_in_as(client, services, "globex")  # before the run: its writes would compete with the run's
    run_id = job_runs.start_job_run(services, owner, job_id)
    assert client.get(f"/pipelines/{job_id}").status_code == 404
    assert client.get(f"/pipelines/runs/{run_id}").status_code == 404
    assert "nightly" not in client.get("/pipelines").text
    wait_end(services, owner, run_id)


def test_no_pipelines_yet_says_how_to_make_one(client: TestClient, services: Services) -> None:
    sign_in_as(client, services, "acme")
    assert "No pipelines yet" in client.get("/pipelines").text


def test_a_schedule_is_set_paused_resumed_and_removed_with_its_next_fire_times(
    client: TestClient, services: Services
) -> None:
    job_id, owner = _job(services)
    sign_in_as(client, services, "acme", role="engineer")
    page = client.get(f"/pipelines/{job_id}").text
    assert "No schedule" in page
    saved = client.post(
        f"/pipelines/{job_id}/schedule",
        data={"csrf_token": csrf_of(page), "cron": "0 30 6 * * ?", "timezone": "Europe/Paris"},
    )
    assert saved.status_code == 303
    page = client.get(f"/pipelines/{job_id}").text
    times = page.split('class="fire-times"')[1].split("</ol>")[0].count("<time")
    assert times >= 2 and 'data-paused="false"' in page and "Europe/Paris" in page
    assert jobs.get_job(services, owner, job_id).schedule == {
        "quartz_cron_expression": "0 30 6 * * ?",
        "timezone_id": "Europe/Paris",
        "pause_status": "UNPAUSED",
        "catch_up": False,
    }
    assert client.post(f"/pipelines/{job_id}/pause", data={"csrf_token": csrf_of(page)}).status_code == 303
    page = client.get(f"/pipelines/{job_id}").text
    assert 'data-paused="true"' in page and 'class="fire-times"' not in page and "Resume schedule" in page
    assert client.post(f"/pipelines/{job_id}/resume", data={"csrf_token": csrf_of(page)}).status_code == 303
    assert not jobs.get_job(services, owner, job_id).paused
    removed = client.post(f"/pipelines/{job_id}/schedule", data={"csrf_token": csrf_of(page), "cron": ""})
    assert removed.status_code == 303 and jobs.get_job(services, owner, job_id).schedule is None


def test_a_schedule_that_is_not_quartz_is_refused_with_its_code_and_nothing_changes(
    client: TestClient, services: Services
) -> None:
    job_id, owner = _job(services)
    sign_in_as(client, services, "acme", role="engineer")
    page = client.get(f"/pipelines/{job_id}").text
    refused = client.post(
        f"/pipelines/{job_id}/schedule", data={"csrf_token": csrf_of(page), "cron": "every day", "timezone": "UTC"}
    )
    assert refused.status_code == 400 and 'data-code="invalid_job"' in refused.text
    assert jobs.get_job(services, owner, job_id).version == 1


def test_an_analyst_sees_the_schedule_but_cannot_change_it(client: TestClient, services: Services) -> None:
    job_id, owner = _job(services)
    definition = {
        **jobs.get_job(services, owner, job_id).definition,
        "schedule": {"quartz_cron_expression": "0 0 6 * * ?"},
    }
    jobs.update_job(services, owner, job_id, definition)
    sign_in_as(client, services, "acme", role="analyst")
    page = client.get(f"/pipelines/{job_id}").text
    assert "0 0 6 * * ?" in page and "Save schedule" not in page and "Pause schedule" not in page
    for action, data in (("schedule", {"cron": ""}), ("pause", {}), ("resume", {})):
        refused = client.post(f"/pipelines/{job_id}/{action}", data={"csrf_token": csrf_of(page), **data})
        assert refused.status_code == 403 and 'data-code="permission_denied"' in refused.text
    assert jobs.get_job(services, owner, job_id).schedule is not None


def test_on_databricks_a_job_links_to_its_workspace_job_or_says_why_the_service_runs_it(
    on_databricks: Services, fake_workspace: DatabricksSettings
) -> None:
    owner = make_principal(on_databricks, "acme")[0]
    remote = create(
        on_databricks, owner, "remote", [sql_task("one", "CREATE OR REPLACE TABLE gold.one AS SELECT 1 AS x")]
    )
    here = create(
        on_databricks,
        owner,
        "here",
        [{"task_key": "clean", "kind": "transform", "config": {"bronze_table": "orders"}}],
    )
    workspace_id = jobs.get_job(on_databricks, owner, remote).databricks_job_id
    with TestClient(create_app(on_databricks.settings, services=on_databricks), follow_redirects=False) as client:
        sign_in_as(client, on_databricks, "acme", role="analyst")
        linked = client.get(f"/pipelines/{remote}").text.split('id="orchestrator"')[1].split("</p>")[0]
        assert f'href="{fake_workspace.host.rstrip("/")}/jobs/{workspace_id}"' in linked
        explained = client.get(f"/pipelines/{here}").text.split('id="orchestrator"')[1].split("</p>")[0]
        assert "&#39;clean&#39; (transform)" in explained and "href" not in explained
