"""Issue 21's path end to end: a pipeline with a sync (from a real PostgreSQL table), a transform, a
SQL task and a notebook task goes through analyze -> generate -> validate (no error finding; the sync
reported as a warning) -> create_tests, and the generated tests pass against the real local home."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from servicetsunami.services.bundles import analysis, generate, scaffold, validate
from servicetsunami.services.container import Services
from servicetsunami.services.notebooks import runs as nbruns
from servicetsunami.settings import Settings
from tests.helpers import make_principal
from tests.integration.bundles.support import pipeline
from tests.integration.bundles.test_scaffold import pytest_on, write

pytestmark = pytest.mark.slow
TARGETS = {"dev": {"warehouse_id": "wh-dev"}, "prod": {"warehouse_id": "wh-prod", "catalog": "orders_prod"}}


def test_a_pipeline_becomes_a_valid_bundle_whose_generated_tests_pass_locally(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    owner, key = make_principal(services, "acme", role="admin")
    with pipeline(services, owner) as made:
        first = nbruns.wait_notebook_run(
            services, owner, nbruns.run_notebook(services, owner, made.notebook_id), timeout=120
        )
        assert first.run.state == "succeeded", first.run.error

        found = analysis.analyze_notebook(services, owner, "/reports/big_orders")
        assert {t.table.split(".", 1)[1] for t in found.tables} == {"silver.orders", "gold.big_orders"}
        assert [w.name for w in found.widgets] == ["min_amount"]

        bundle = generate.generate_bundle(services, owner, "orders", jobs=["orders_daily"], targets=TARGETS)
        assert [(f.code, f.severity, f.path) for f in bundle.findings if f.code != "notebook_libraries"] == [
            ("sync_not_representable", "warning", "resources.jobs.orders_daily.tasks[0]")
        ]
        job = yaml.safe_load(bundle.files["resources/orders_daily.job.yml"])["resources"]["jobs"]["orders_daily"]
        tasks = {t["task_key"]: t for t in job["tasks"]}
        assert list(tasks) == ["clean", "totals", "report"]
        assert "depends_on" not in tasks["clean"]  # its sync was left out and bridged
        assert tasks["clean"]["max_retries"] == 2 and tasks["clean"]["min_retry_interval_millis"] == 30_000
        assert tasks["totals"]["timeout_seconds"] == 600
        assert tasks["report"]["notebook_task"]["notebook_path"] == "../src/reports/big_orders.py"
        assert job["schedule"]["timezone_id"] == "Europe/Berlin"
        clean_sql = bundle.files["src/orders_daily/clean.sql"]
        assert "USE CATALOG IDENTIFIER(:catalog)" in clean_sql and "VERSION AS OF" not in clean_sql
        resources = {p: t for p, t in bundle.files.items() if p.startswith(("resources/", "src/orders_daily/"))}
        assert not any(owner.catalog in text for text in resources.values())  # ${var.catalog}, per target
        assert yaml.safe_load(bundle.files["databricks.yml"])["targets"]["dev"]["variables"]["catalog"] == owner.catalog

        report = validate.validate_bundle(owner, bundle.files)
        assert report.valid and [f for f in report.findings if f.severity == "error"] == []

        generated = scaffold.create_tests(services, owner, bundle=bundle.files)
        assert any(path.startswith("tests/test_") for path in generated.files)
        folder = write(generated, tmp_path / "project", bundle.files)
        done = pytest_on(folder, settings, key)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
        assert "passed" in done.stdout and "failed" not in done.stdout
