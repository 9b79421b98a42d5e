"""The bundle tools through every door: MCP (a real in-memory client), REST (the ASGI app), the CLI
(typer's runner); analysts may analyze and validate but not generate or make tests."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from servicetsunami.api.app import create_app
from servicetsunami.cli.app import app as cli_app
from servicetsunami.services.container import Services
from servicetsunami.services.notebooks import notebooks
from servicetsunami.services.pipelines import jobs
from servicetsunami.tenancy import Principal, TableRef
from tests.helpers import make_principal
from tests.integration.mcp.support import error_code, local_client

NOTEBOOK = """# Databricks notebook source
dbutils.widgets.text("region", "north")

# COMMAND ----------

rows = spark.table("bronze.sales").filter(f"region = '{dbutils.widgets.get('region')}'")
rows.write.mode("overwrite").saveAsTable("silver.region_sales")
"""
TARGETS = {"dev": {"warehouse_id": "wh-dev"}, "prod": {"warehouse_id": "wh-prod", "catalog": "sales_prod"}}


def tenant(services: Services, role: str = "engineer") -> tuple[Principal, str]:
    principal, key = make_principal(services, "acme", role)
    if role == "engineer":
        rows = pa.table({"region": ["north", "south"], "amount": [30, 42]})
        services.engine.write_table(
            TableRef(principal.catalog, "bronze", "sales"),
            pa.RecordBatchReader.from_batches(rows.schema, rows.to_batches()),
            mode="overwrite",
        )
        notebooks.create_notebook(services, principal, "/etl/regions", content=NOTEBOOK, format="source")
        jobs.create_job(
            services,
            principal,
            {
                "name": "Regions nightly",
                "tasks": [
                    {"task_key": "regions", "kind": "notebook", "config": {"notebook_path": "/etl/regions"}},
                    {
                        "task_key": "totals",
                        "kind": "sql",
                        "depends_on": ["regions"],
                        "config": {"sql": "CREATE OR REPLACE TABLE gold.totals AS SELECT sum(amount) AS t FROM sales"},
                    },
                ],
                "schedule": {"quartz_cron_expression": "0 0 3 * * ?", "timezone_id": "UTC"},
            },
        )
    return principal, key


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services.settings, services=services)) as c:
        yield c


async def test_mcp_tools_analyze_generate_validate_and_make_tests_and_analysts_only_read(
    services: Services,
) -> None:
    _, engineer = tenant(services)
    _, analyst = tenant(services, "analyst")
    async with local_client(services, engineer) as client:
        analysis = await client.call_tool("analyze_notebook", {"notebook": "/etl/regions"})
        assert [w["name"] for w in analysis.structured_content["widgets"]] == ["region"]
        made = await client.call_tool(
            "generate_bundle",
            {"name": "regions", "jobs": ["Regions nightly"], "targets": TARGETS, "as_zip": True},
        )
        files = made.structured_content["files"]
        assert {"databricks.yml", "resources/regions_nightly.job.yml", "src/etl/regions.py"} <= set(files)
        checked = await client.call_tool("validate_bundle", {"zip_base64": made.structured_content["zip_base64"]})
        assert checked.structured_content["valid"], checked.structured_content["findings"]
        scaffold = await client.call_tool("create_tests", {"notebook": "/etl/regions"})
        assert any(path.endswith(".py") for path in scaffold.structured_content["files"])
        both = await client.call_tool_mcp("validate_bundle", {"files": files, "zip_base64": "eA=="})
        assert error_code(both) == "invalid_input"
    async with local_client(services, analyst) as client:
        names = {tool.name for tool in await client.list_tools()}
        assert {"analyze_notebook", "validate_bundle"} <= names
        assert not names & {"generate_bundle", "create_tests"}
        assert (await client.call_tool("validate_bundle", {"files": files})).structured_content["valid"]
        refused = await client.call_tool_mcp("generate_bundle", {"name": "x", "jobs": ["Regions nightly"]})
        assert error_code(refused) in ("permission_denied", "tool_not_enabled")


def test_rest_generates_json_or_a_zip_validates_either_and_refuses_analysts_a_generation(
    services: Services, client: TestClient
) -> None:
    _, engineer = tenant(services)
    _, analyst = tenant(services, "analyst")
    eng = {"Authorization": f"Bearer {engineer}"}
    body = {"name": "regions", "jobs": ["Regions nightly"], "targets": TARGETS}
    made = client.post("/api/v1/bundles/generate", json=body, headers=eng)
    assert made.status_code == 200, made.text
    files = made.json()["files"]
    assert "${var.catalog}" in files["resources/regions_nightly.job.yml"]
    assert "tenant_acme" not in files["src/regions_nightly/totals.sql"]
    zipped = client.post("/api/v1/bundles/generate", json=body, headers={**eng, "Accept": "application/zip"})
    assert zipped.status_code == 200 and zipped.headers["content-type"] == "application/zip"
    assert "regions/databricks.yml" in zipfile.ZipFile(io.BytesIO(zipped.content)).namelist()

    ana = {"Authorization": f"Bearer {analyst}"}
    as_zip = client.post(
        "/api/v1/bundles/validate", content=zipped.content, headers={**ana, "Content-Type": "application/zip"}
    )
    assert as_zip.status_code == 200 and as_zip.json()["valid"], as_zip.text
    broken = {**files, "resources/regions_nightly.job.yml": files["resources/regions_nightly.job.yml"] + "  x: [\n"}
    report = client.post("/api/v1/bundles/validate", json={"files": broken}, headers=ana).json()
    assert [f["code"] for f in report["findings"]] == ["yaml_syntax"] and not report["valid"]
    analysis = client.post("/api/v1/bundles/analyze", json={"notebook": "/etl/regions"}, headers=ana)
    assert analysis.status_code == 200 and analysis.json()["path"] == "/etl/regions"
    refused = client.post("/api/v1/bundles/generate", json=body, headers=ana)
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
    bad = client.post("/api/v1/bundles/validate", content=b"{}", headers={**ana, "Content-Type": "application/json"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_input"
    not_zip = client.post("/api/v1/bundles/validate", content=b"PK", headers={**ana, "Content-Type": "application/zip"})
    assert not_zip.status_code == 400 and not_zip.json()["code"] == "invalid_input"
    tests = client.post("/api/v1/bundles/tests", json={"bundle": files}, headers=eng)
    assert tests.status_code == 200, tests.text
    missing = client.post("/api/v1/bundles/generate", json={**body, "jobs": ["nope"]}, headers=eng)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_the_cli_generates_a_folder_validates_it_and_writes_tests(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, key = tenant(services)
    home = services.settings.resolved_home
    services.close()
    monkeypatch.setenv("TSUNAMI_HOME", str(home))
    monkeypatch.setenv("TSUNAMI_API_KEY", key)
    runner = CliRunner()
    out = tmp_path / "regions"
    made = runner.invoke(
        cli_app,
        [
            "bundle",
            "generate",
            "--job",
            "Regions nightly",
            "--out",
            str(out),
            "--var",
            "dev.warehouse_id=wh1",
            "--var",
            "prod.warehouse_id=wh2",
        ],
    )
    assert made.exit_code == 0, made.output
    assert (out / "databricks.yml").is_file() and (out / "src" / "etl" / "regions.py").is_file()
    again = runner.invoke(cli_app, ["bundle", "generate", "--job", "Regions nightly", "--out", str(out)])
    assert again.exit_code == 2 and "conflict" in again.output
    in_bundle = runner.invoke(cli_app, ["bundle", "tests", str(out), "--out", str(out)])
    assert in_bundle.exit_code == 0, in_bundle.output
    assert any((out / "tests").glob("test_*.py"))
    checked = runner.invoke(cli_app, ["bundle", "validate", str(out), "--json"])
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.output)["valid"]
    (out / "src" / "etl" / "regions.py").unlink()
    failed = runner.invoke(cli_app, ["bundle", "validate", str(out)])
    assert failed.exit_code == 1 and "missing_file" in failed.output
    analyzed = runner.invoke(cli_app, ["bundle", "analyze", "/etl/regions"])
    assert analyzed.exit_code == 0 and json.loads(analyzed.output)["widgets"][0]["name"] == "region"
    tests = runner.invoke(cli_app, ["bundle", "tests", "--notebook", "/etl/regions", "--out", str(tmp_path / "t")])
    assert tests.exit_code == 0, tests.output
    assert any((tmp_path / "t").rglob("test_*.py"))


def test_a_generated_zip_holds_the_same_files_under_the_bundle_name(services: Services) -> None:
    from servicetsunami.services.bundles import generate

    principal, _ = tenant(services)
    made = generate.generate_bundle(services, principal, "regions", jobs=["Regions nightly"], targets=TARGETS)
    archive = zipfile.ZipFile(io.BytesIO(generate.to_zip(made.files, root="regions")))
    assert {n.removeprefix("regions/"): archive.read(n).decode() for n in archive.namelist()} == made.files
    assert base64.b64encode(generate.to_zip(made.files)) == base64.b64encode(generate.to_zip(made.files))


def test_a_job_cluster_bundle_pins_the_notebook_packages_and_validates_clean(services: Services) -> None:
    from servicetsunami.services.bundles import generate, validate

    principal, _ = tenant(services)
    made = generate.generate_bundle(
        services, principal, "regions", jobs=["Regions nightly"], targets=TARGETS, compute="job_cluster"
    )
    job = made.files["resources/regions_nightly.job.yml"]
    assert "job_cluster_key: main" in job and "${var.spark_version}" in job
    assert validate.validate_bundle(principal, made.files, use_cli=False).findings == []


def test_another_tenants_jobs_and_notebooks_are_not_found(services: Services) -> None:
    from servicetsunami.errors import NotFound
    from servicetsunami.services.bundles import generate

    principal, _ = tenant(services)
    job_id = jobs.list_jobs(services, principal)[0].job_id
    globex = make_principal(services, "globex", "engineer")[0]
    with pytest.raises(NotFound):
        generate.generate_bundle(services, globex, "x", jobs=[job_id])
    with pytest.raises(NotFound):
        generate.generate_bundle(services, globex, "x", notebooks=["/etl/regions"])


@pytest.mark.parametrize(
    "arguments",
    [
        {"name": "bad name!", "jobs": ["Regions nightly"]},
        {"name": "regions"},
        {"name": "regions", "jobs": ["Regions nightly"], "targets": {"staging": {}}},
        {"name": "regions", "jobs": ["Regions nightly"], "targets": {"dev": {"colour": "blue"}}},
        {"name": "regions", "jobs": ["Regions nightly"], "targets": {"dev": {"catalog": "a b"}}},
        {"name": "regions", "jobs": ["Regions nightly"], "compute": "gpu"},
    ],
)
def test_generate_refuses_what_it_cannot_make_a_bundle_of(services: Services, arguments: dict[str, object]) -> None:
    from servicetsunami.errors import InvalidInput
    from servicetsunami.services.bundles import generate

    principal, _ = tenant(services)
    name = str(arguments.pop("name"))
    with pytest.raises(InvalidInput):
        generate.generate_bundle(services, principal, name, **arguments)  # type: ignore[arg-type]  # bad on purpose


def test_a_run_job_task_brings_the_job_it_runs_and_names_it_by_reference(services: Services) -> None:
    from servicetsunami.services.bundles import generate, validate

    principal, _ = tenant(services)
    inner = jobs.list_jobs(services, principal)[0].job_id
    jobs.create_job(
        services,
        principal,
        {"name": "wrapper", "tasks": [{"task_key": "inner", "kind": "run_job", "config": {"job_id": inner}}]},
    )
    made = generate.generate_bundle(services, principal, "regions", jobs=["wrapper"], targets=TARGETS)
    assert made.jobs == {"wrapper": made.jobs["wrapper"], "regions_nightly": inner}
    assert "job_id: ${resources.jobs.regions_nightly.id}" in made.files["resources/wrapper.job.yml"]
    assert validate.validate_bundle(principal, made.files, use_cli=False).findings == []
