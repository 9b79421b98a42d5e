"""Jobs through every door: REST /api/v1/pipelines, the MCP tools, the CLI; the seeds' pipeline
example as written; another tenant's ids answer 404."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from servicetsunami.api.app import create_app
from servicetsunami.cli.app import app as cli_app
from servicetsunami.services.container import Services
from servicetsunami.services.notebooks import notebooks
from servicetsunami.services.pipelines import job_runs, jobs
from servicetsunami.tenancy import Principal, TableRef
from tests.helpers import make_principal
from tests.integration.api.support import login
from tests.integration.mcp.support import error_code, local_client
from tests.integration.pipelines.support import sql_task, states

SEEDS_001: dict[str, Any] = {
    "name": "ETL Pipeline",
    "config": {
        "tasks": [
            {"name": "extract", "type": "notebook", "config": {"notebook_path": "/Shared/extract_data"}},
            {
                "name": "transform",
                "type": "sql",
                "depends_on": ["extract"],
                "config": {"query": "SELECT * FROM bronze.raw_data", "warehouse_id": "abc123"},
            },
        ],
        "schedule": {"quartz_cron_expression": "0 0 2 * * ?", "timezone_id": "America/Los_Angeles"},
    },
}


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services.settings, services=services)) as c:
        yield c


EXTRACT_DATA = """# Databricks notebook source
# COMMAND ----------
rows = spark.table("bronze.raw_data").count()
dbutils.notebook.exit(f"extracted {rows}")
"""


@pytest.fixture
def extract_notebook(services: Services) -> Callable[[Principal], None]:
    """The seeds' extract step as a real notebook of the tenant, run in the sandbox."""

    def create(principal: Principal) -> None:
        notebooks.create_notebook(services, principal, "/Shared/extract_data", content=EXTRACT_DATA, format="source")

    return create


def wait_until_finished(client: TestClient, headers: dict[str, str], run: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + 120  # a sandboxed kernel starts in seconds on a loaded machine
    while run["status"] in ("Pending", "Running") and time.monotonic() < deadline:
        run = client.get(f"/api/v1/pipelines/runs/{run['run_id']}?wait_seconds=5", headers=headers).json()
    return run


def _raw_data(services: Services, catalog: str) -> None:
    rows = pa.table({"id": [1, 2, 3], "amount": [9.5, 3.0, 1.25]})
    services.engine.write_table(
        TableRef(catalog, "bronze", "raw_data"),
        pa.RecordBatchReader.from_batches(rows.schema, rows.to_batches()),
        mode="overwrite",
    )


def test_the_seeds_pipeline_is_created_as_written_and_runs_its_notebook_then_its_sql(
    client: TestClient, services: Services, extract_notebook: Callable[[Principal], None]
) -> None:
    acme = login(client, services, "acme", role="engineer")
    principal = services.authenticate(acme.access_token)
    _raw_data(services, principal.catalog)
    extract_notebook(principal)
    created = client.post("/api/v1/pipelines", json=SEEDS_001, headers=acme.headers)
    assert created.status_code == 201, created.text
    pipeline = created.json()
    assert pipeline["schedule"]["quartz_cron_expression"] == "0 0 2 * * ?"
    assert len(pipeline["next_fire_times"]) == 5 and pipeline["next_fire_times"][0].endswith(("09:00:00Z", "10:00:00Z"))
    ran = client.post(f"/api/v1/pipelines/{pipeline['job_id']}/run", json={"wait_seconds": 60}, headers=acme.headers)
    assert ran.status_code == 202, ran.text
    run = wait_until_finished(client, acme.headers, ran.json())
    assert (run["status"], [t["state"] for t in run["tasks"]]) == ("Succeeded", ["succeeded", "succeeded"])
    assert run["tasks"][0]["values"] == {"exit_value": "extracted 3"}
    transform = run["tasks"][1]
    assert transform["result"]["output"]["rows"] == [[1, 9.5], [2, 3.0], [3, 1.25]]
    history = client.get(f"/api/v1/pipelines/{pipeline['job_id']}/runs", headers=acme.headers).json()
    assert [r["run_id"] for r in history["items"]] == [run["run_id"]]


def test_without_its_notebook_the_seeds_pipeline_says_why_its_first_task_failed(
    client: TestClient, services: Services
) -> None:
    acme = login(client, services, "acme", role="engineer")
    pipeline = client.post("/api/v1/pipelines", json=SEEDS_001, headers=acme.headers).json()
    run = client.post(
        f"/api/v1/pipelines/{pipeline['job_id']}/run", json={"wait_seconds": 30}, headers=acme.headers
    ).json()
    assert run["status"] == "Failed"
    assert [(t["state"], t["error_code"]) for t in run["tasks"]] == [
        ("failed", "not_found"),
        ("skipped", "upstream_failed"),
    ]


def test_rest_refuses_bad_definitions_and_another_tenant_gets_404_for_every_id(
    client: TestClient, services: Services
) -> None:
    acme, globex = login(client, services, "acme", role="engineer"), login(client, services, "globex")
    cycle = {"name": "loop", "tasks": [sql_task("a", "SELECT 1", "b"), sql_task("b", "SELECT 1", "a")]}
    refused = client.post("/api/v1/pipelines", json=cycle, headers=acme.headers)
    assert (refused.status_code, refused.json()["code"]) == (400, "invalid_job")
    job = client.post(
        "/api/v1/pipelines", json={"name": "mine", "tasks": [sql_task("a", "SELECT 1")]}, headers=acme.headers
    )
    job_id = job.json()["job_id"]
    run = client.post(f"/api/v1/pipelines/{job_id}/run", json={"wait_seconds": 30}, headers=acme.headers).json()
    for method, path, body in [
        ("GET", f"/api/v1/pipelines/{job_id}", None),
        ("PUT", f"/api/v1/pipelines/{job_id}", {"name": "theirs", "tasks": [sql_task("a", "SELECT 1")]}),
        ("DELETE", f"/api/v1/pipelines/{job_id}", None),
        ("POST", f"/api/v1/pipelines/{job_id}/run", {}),
        ("GET", f"/api/v1/pipelines/{job_id}/runs", None),
        ("GET", f"/api/v1/pipelines/runs/{run['run_id']}", None),
        ("POST", f"/api/v1/pipelines/runs/{run['run_id']}/cancel", None),
        ("POST", f"/api/v1/pipelines/runs/{run['run_id']}/repair", {}),
    ]:
        reply = client.request(method, path, json=body, headers=globex.headers)
        assert (reply.status_code, reply.json()["code"]) == (404, "not_found"), (method, path)
    assert client.get("/api/v1/pipelines", headers=globex.headers).json()["items"] == []
    done = client.post(f"/api/v1/pipelines/runs/{run['run_id']}/cancel", headers=acme.headers)
    assert (done.status_code, done.json()["code"]) == (409, "conflict")
    assert client.delete(f"/api/v1/pipelines/{job_id}", headers=acme.headers).status_code == 204
    assert client.get(f"/api/v1/pipelines/runs/{run['run_id']}", headers=acme.headers).json()["status"] == "Succeeded"


def test_the_openapi_summaries_carry_the_seeds_tool_names(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    summaries = {op["summary"] for p in paths if p.startswith("/api/v1/pipelines") for op in paths[p].values()}
    assert {"create_job", "list_jobs", "get_job", "update_job", "delete_job", "run_job", "list_job_runs"} <= summaries
    assert {"get_job_run_status", "cancel_job_run", "repair_job_run"} <= summaries


async def test_mcp_tools_run_a_job_and_analysts_may_only_read(services: Services) -> None:
    engineer = make_principal(services, "acme", "engineer")[1]
    analyst = make_principal(services, "acme", "analyst")[1]
    async with local_client(services, engineer) as client:
        created = await client.call_tool(
            "create_job", {"definition": {"name": "m", "tasks": [sql_task("a", "SELECT 1")]}}
        )
        job_id = created.structured_content["job_id"]
        ran = await client.call_tool("run_job", {"job_id": job_id, "wait_seconds": 30})
        assert ran.structured_content["status"] == "Succeeded"
        status = await client.call_tool("get_job_run_status", {"run_id": ran.structured_content["run_id"]})
        assert status.structured_content["tasks"][0]["values"] == {"row_count": 1}
        bad = await client.call_tool_mcp(
            "create_job", {"definition": {"name": "x", "tasks": [sql_task("a", "SELECT 1", "a")]}}
        )
        assert error_code(bad) == "invalid_job"
        repaired = await client.call_tool_mcp("repair_job_run", {"run_id": ran.structured_content["run_id"]})
        assert error_code(repaired) == "conflict"
    async with local_client(services, analyst) as client:
        names = {tool.name for tool in await client.list_tools()}
        assert {"list_jobs", "get_job", "get_job_run_status", "list_job_runs"} <= names
        assert not names & {"create_job", "update_job", "delete_job", "run_job", "cancel_job_run", "repair_job_run"}
        listed = await client.call_tool("list_job_runs", {"job_id": job_id})
        assert len(listed.structured_content["runs"]) == 1
        refused = await client.call_tool_mcp("run_job", {"job_id": job_id})
        assert error_code(refused) in ("permission_denied", "not_found")


def test_the_cli_creates_a_job_from_yaml_and_runs_it_with_a_task_table(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = make_principal(services, "acme", "engineer")[1]
    home = services.settings.resolved_home
    services.close()
    monkeypatch.setenv("TSUNAMI_HOME", str(home))
    monkeypatch.setenv("TSUNAMI_API_KEY", key)
    job_file = tmp_path / "job.yaml"
    job_file.write_text(
        "name: nightly\n"
        "parameters: {rows: '5'}\n"
        "tasks:\n"
        "  - task_key: numbers\n"
        "    kind: sql\n"
        "    config: {sql: 'CREATE OR REPLACE TABLE silver.numbers AS SELECT id FROM range({{job.parameters.rows}})'}\n"
        "  - task_key: total\n"
        "    kind: sql\n"
        "    depends_on: [numbers]\n"
        "    config: {sql: 'CREATE OR REPLACE TABLE gold.total AS SELECT count(*) AS n FROM silver.numbers'}\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    created = runner.invoke(cli_app, ["jobs", "create", "-f", str(job_file)])
    assert created.exit_code == 0, created.output
    job_id = created.output.split(":")[0].strip()
    ran = runner.invoke(cli_app, ["jobs", "run", job_id, "--wait", "-p", "rows=7"])
    assert ran.exit_code == 0, ran.output
    assert "numbers" in ran.output and "total" in ran.output and "Succeeded" in ran.output
    listed = runner.invoke(cli_app, ["jobs", "runs", job_id, "--json"])
    runs_json = json.loads(listed.output)
    assert [r["status"] for r in runs_json] == ["Succeeded"] and runs_json[0]["parameters"] == {"rows": "7"}
    tables = [runner.invoke(cli_app, ["jobs", *args], env={"COLUMNS": "80"}).output for args in (["list"], ["runs"])]
    assert job_id in tables[0] and runs_json[0]["run_id"] in tables[1]  # whole on a narrow terminal, to be copied
    failed = runner.invoke(cli_app, ["jobs", "repair", runs_json[0]["run_id"]])
    assert failed.exit_code != 0 and "succeeded" in failed.output


def test_jobs_and_runs_of_one_tenant_are_invisible_to_another_in_the_services(services: Services) -> None:
    acme = make_principal(services, "acme", "engineer")[0]
    globex = make_principal(services, "globex", "engineer")[0]
    job_id = jobs.create_job(services, acme, {"name": "same_name", "tasks": [sql_task("a", "SELECT 1")]}).job_id
    jobs.create_job(services, globex, {"name": "same_name", "tasks": [sql_task("a", "SELECT 1")]})
    run = job_runs.run_job(services, acme, job_id, wait_seconds=30)
    assert states(run) == {"a": "succeeded"}
    for call in (
        lambda: jobs.get_job(services, globex, job_id),
        lambda: job_runs.get_job_run(services, globex, run.run_id),
        lambda: job_runs.start_job_run(services, globex, job_id),
        lambda: job_runs.list_job_runs(services, globex, job_id=job_id),
    ):
        with pytest.raises(Exception) as raised:
            call()
        assert getattr(raised.value, "code", None) == "not_found"
