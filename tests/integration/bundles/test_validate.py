"""validate_bundle's golden cases: a clean bundle has no findings, and a bundle with one kind of error
gets exactly the findings expected (code, file, key path)."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from servicetsunami.errors import InvalidInput, LimitExceeded
from servicetsunami.services.bundles import cli, loading
from servicetsunami.services.bundles.validate import CHECKS, validate_bundle
from servicetsunami.tenancy import Principal, principal_for

ROOT = """\
bundle:
  name: orders
include:
  - resources/*.yml
variables:
  catalog:
    description: the catalog
  warehouse_id:
    description: the warehouse
targets:
  dev:
    mode: development
    default: true
    workspace:
      root_path: ~/.bundle/${bundle.name}/${bundle.target}
    variables:
      catalog: tenant_acme
      warehouse_id: abc
  prod:
    mode: production
    variables:
      catalog: prod
      warehouse_id: def
"""

JOB = """\
resources:
  jobs:
    daily:
      name: daily
      job_clusters:
        - job_cluster_key: main
          new_cluster:
            spark_version: 15.4.x-scala2.12
            num_workers: 1
      schedule:
        quartz_cron_expression: 0 30 2 * * ?
        timezone_id: Europe/Berlin
      tasks:
        - task_key: totals
          sql_task:
            warehouse_id: ${var.warehouse_id}
            file:
              path: ../src/totals.sql
        - task_key: report
          depends_on:
            - task_key: totals
          job_cluster_key: main
          notebook_task:
            notebook_path: ../src/report.py
            base_parameters:
              catalog: ${var.catalog}
"""

SOURCES = {"src/totals.sql": "SELECT 1;\n", "src/report.py": "# Databricks notebook source\nprint(1)\n"}


def bundle(job: str = JOB, root: str = ROOT, **extra: str) -> dict[str, str]:
    return {"databricks.yml": root, "resources/daily.job.yml": job, **SOURCES, **extra}


@pytest.fixture
def analyst() -> Principal:
    return principal_for(tenant_id="t1", tenant_slug="acme", subject="a", role="analyst", catalog_prefix="tenant_")


def found(analyst: Principal, files: dict[str, str]) -> list[tuple[str, str, str]]:
    report = validate_bundle(analyst, files, use_cli=False)
    return [(f.code, f.file, f.path) for f in report.findings]


def test_a_clean_bundle_has_no_findings_and_says_which_checks_ran(analyst: Principal) -> None:
    report = validate_bundle(analyst, bundle())
    assert report.valid and report.findings == []
    assert report.checks[: len(CHECKS)] == list(CHECKS)
    assert report.jobs == ["daily"] and report.targets == ["dev", "prod"]
    assert report.databricks_cli == "not installed" or "databricks_cli" in report.checks


def test_a_dependency_cycle_is_one_finding_at_the_first_task_of_the_cycle(analyst: Principal) -> None:
    job = JOB.replace(
        "        - task_key: totals\n",
        "        - task_key: totals\n          depends_on:\n            - task_key: report\n",
        1,
    )
    assert found(analyst, bundle(job)) == [
        ("dependency_cycle", "resources/daily.job.yml", "resources.jobs.daily.tasks[0].depends_on")
    ]


def test_a_dependency_on_an_unknown_task_is_named(analyst: Principal) -> None:
    job = JOB.replace("            - task_key: totals\n", "            - task_key: total\n")
    assert found(analyst, bundle(job)) == [
        ("unknown_dependency", "resources/daily.job.yml", "resources.jobs.daily.tasks[1].depends_on[0].task_key")
    ]


def test_a_missing_notebook_is_named_by_the_task_that_runs_it(analyst: Principal) -> None:
    files = bundle()
    del files["src/report.py"]
    assert found(analyst, files) == [
        ("missing_file", "resources/daily.job.yml", "resources.jobs.daily.tasks[1].notebook_task.notebook_path")
    ]


def test_an_undeclared_variable_and_one_without_a_value_in_a_target_are_unresolved(analyst: Principal) -> None:
    job = JOB.replace("${var.catalog}", "${var.catalogue}")
    assert found(analyst, bundle(job)) == [
        (
            "unresolved_variable",
            "resources/daily.job.yml",
            "resources.jobs.daily.tasks[1].notebook_task.base_parameters.catalog",
        )
    ]
    root = ROOT.replace("      warehouse_id: def\n", "")
    report = validate_bundle(analyst, bundle(root=root), use_cli=False)
    assert [(f.code, f.path) for f in report.findings] == [
        ("unresolved_variable", "resources.jobs.daily.tasks[0].sql_task.warehouse_id")
    ]
    assert "'prod'" in report.findings[0].message


def test_a_bad_cron_and_a_bad_time_zone_are_told_apart(analyst: Principal) -> None:
    job = JOB.replace("0 30 2 * * ?", "0 30 2 * * *").replace("Europe/Berlin", "Europe/Atlantis")
    assert found(analyst, bundle(job)) == [
        ("invalid_timezone", "resources/daily.job.yml", "resources.jobs.daily.schedule.timezone_id"),
        ("invalid_cron", "resources/daily.job.yml", "resources.jobs.daily.schedule.quartz_cron_expression"),
    ]


def test_duplicate_keys_in_a_file_across_files_and_among_tasks_are_found(analyst: Principal) -> None:
    twice = JOB.replace("      name: daily\n", "      name: daily\n      name: again\n")
    assert found(analyst, bundle(twice)) == [("duplicate_key", "resources/daily.job.yml", "resources.jobs.daily.name")]
    assert found(analyst, bundle(**{"resources/copy.job.yml": JOB})) == [
        ("duplicate_key", "resources/daily.job.yml", "resources.jobs.daily")
    ]
    same_task = JOB.replace("- task_key: report", "- task_key: totals")
    assert found(analyst, bundle(same_task)) == [
        ("duplicate_task_key", "resources/daily.job.yml", "resources.jobs.daily.tasks[1].task_key"),
        ("dependency_cycle", "resources/daily.job.yml", "resources.jobs.daily.tasks[0].depends_on"),
    ]


def test_an_unknown_field_is_checked_against_the_sdk_classes_and_a_bad_enum_value_too(analyst: Principal) -> None:
    job = JOB.replace("          job_cluster_key: main\n", "          job_cluster_key: main\n          retries: 3\n")
    assert found(analyst, bundle(job)) == [
        ("unknown_key", "resources/daily.job.yml", "resources.jobs.daily.tasks[1].retries")
    ]
    job = JOB.replace(
        "          job_cluster_key: main\n", "          job_cluster_key: main\n          run_if: SOMETIMES\n"
    )
    assert found(analyst, bundle(job)) == [
        ("invalid_value", "resources/daily.job.yml", "resources.jobs.daily.tasks[1].run_if")
    ]
    root = ROOT.replace("bundle:\n  name: orders\n", "bundle:\n  name: orders\n  nmae: x\n")
    assert found(analyst, bundle(root=root)) == [("unknown_key", "databricks.yml", "bundle.nmae")]


def test_a_required_field_of_the_sdk_class_is_required(analyst: Principal) -> None:
    job = JOB.replace("            warehouse_id: ${var.warehouse_id}\n", "")
    assert found(analyst, bundle(job)) == [
        ("missing_field", "resources/daily.job.yml", "resources.jobs.daily.tasks[0].sql_task.warehouse_id")
    ]


def test_an_unresolved_job_cluster_key_and_environment_key_are_named(analyst: Principal) -> None:
    job = JOB.replace("job_cluster_key: main\n          notebook", "job_cluster_key: big\n          notebook")
    job = job.replace(
        "        - task_key: totals\n", "        - task_key: totals\n          environment_key: default\n", 1
    )
    assert found(analyst, bundle(job)) == [
        ("unresolved_environment_key", "resources/daily.job.yml", "resources.jobs.daily.tasks[0].environment_key"),
        ("unresolved_job_cluster_key", "resources/daily.job.yml", "resources.jobs.daily.tasks[1].job_cluster_key"),
    ]


def test_a_yaml_syntax_error_gives_its_line_and_column(analyst: Principal) -> None:
    job = JOB.replace("      name: daily\n", "      name: [daily\n")
    report = validate_bundle(analyst, bundle(job), use_cli=False)
    assert [(f.code, f.file) for f in report.findings] == [("yaml_syntax", "resources/daily.job.yml")]
    assert report.findings[0].line is not None and report.findings[0].line >= 4
    assert report.findings[0].column is not None
    assert not report.valid


def test_unknown_references_are_unresolved(analyst: Principal) -> None:
    job = JOB.replace("${var.catalog}", "${resources.jobs.weekly.id}").replace(
        "../src/report.py", "${workspace.file_path}/src/report.py"
    )
    assert found(analyst, bundle(job)) == [
        (
            "unresolved_reference",
            "resources/daily.job.yml",
            "resources.jobs.daily.tasks[1].notebook_task.base_parameters.catalog",
        )
    ]


def test_anchors_and_aliases_are_refused_as_yaml(analyst: Principal) -> None:
    bomb = 'a: &a ["x","x"]\nb: &b [*a,*a]\nc: [*b,*b]\n'
    assert found(analyst, bundle(**{"resources/bomb.yml": bomb})) == [("yaml_syntax", "resources/bomb.yml", "")]


def test_paths_outside_the_bundle_and_oversized_bundles_are_refused(analyst: Principal) -> None:
    with pytest.raises(InvalidInput):
        validate_bundle(analyst, {"../databricks.yml": ROOT})
    with pytest.raises(LimitExceeded):
        validate_bundle(analyst, {"databricks.yml": "x" * (loading.MAX_FILE_BYTES + 1)})


def test_a_zip_with_one_top_folder_is_read_as_the_bundle(analyst: Principal) -> None:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        for path, text in bundle().items():
            archive.writestr(f"orders/{path}", text)
    files = loading.files_from_zip(data.getvalue())
    assert validate_bundle(analyst, files, use_cli=False).valid
    with pytest.raises(InvalidInput):
        loading.files_from_zip(b"not a zip")


def test_the_databricks_cli_when_installed_runs_too_and_its_errors_become_findings(
    analyst: Principal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in for the Databricks CLI (not installed here): it answers --version, and to `bundle
    # validate` prints what the CLI prints for a bundle it cannot authenticate, from inside the copy.
    fake = tmp_path / "bin" / "databricks"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "--version" ]; then echo "Databricks CLI v0.250.0"; exit 0; fi\n'
        "test -f databricks.yml || exit 3\n"
        'echo "Warning: unknown field: nmae" >&2\n'
        'echo "Error: cannot resolve bundle auth configuration in $PWD" >&2\n'
        "exit 1\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    cli._version.cache_clear()
    try:
        report = validate_bundle(analyst, bundle())
    finally:
        cli._version.cache_clear()
    assert report.databricks_cli == "Databricks CLI v0.250.0"
    assert report.checks[-1] == "databricks_cli"
    assert [(f.source, f.severity, f.code) for f in report.findings] == [
        ("databricks_cli", "warning", "databricks_cli"),
        ("databricks_cli", "error", "databricks_cli"),
    ]
    assert not report.valid
    assert str(tmp_path) not in report.findings[1].message and "/tmp" not in report.findings[1].message
