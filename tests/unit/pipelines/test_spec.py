"""Job definitions: both shapes accepted, and cycles, unknown dependencies, kinds, references and
crons refused with the reason."""

from __future__ import annotations

from typing import Any

import pytest

from servicetsunami.errors import InvalidJob
from servicetsunami.services.pipelines.spec import render, validate_job

CATALOG = "ts_acme"

SEEDS_001 = {
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


def sql(key: str, *deps: str, text: str = "SELECT 1", **extra: Any) -> dict[str, Any]:
    return {"task_key": key, "kind": "sql", "depends_on": list(deps), "config": {"sql": text}, **extra}


def refusal(definition: dict[str, Any]) -> InvalidJob:
    with pytest.raises(InvalidJob) as raised:
        validate_job(definition, catalog=CATALOG)
    assert raised.value.code == "invalid_job"
    return raised.value


def test_the_seeds_pipeline_config_is_accepted_as_written() -> None:
    job = validate_job(SEEDS_001, catalog=CATALOG)
    assert [(t.task_key, t.kind, t.depends_on) for t in job.tasks] == [
        ("extract", "notebook", []),
        ("transform", "sql", ["extract"]),
    ]
    assert job.tasks[1].config == {"query": "SELECT * FROM bronze.raw_data", "warehouse_id": "abc123"}
    assert job.schedule is not None and job.schedule.timezone_id == "America/Los_Angeles"


def test_databricks_spellings_are_accepted() -> None:
    job = validate_job(
        {
            "name": "dbx",
            "parameters": [{"name": "day", "default": "2026-01-01"}],
            "tasks": [
                sql("a"),
                sql("b", run_if="AT_LEAST_ONE_FAILED", min_retry_interval_millis=1500, timeout_seconds=0)
                | {"depends_on": [{"task_key": "a"}]},
            ],
        },
        catalog=CATALOG,
    )
    b = job.tasks[1]
    assert (b.depends_on, b.run_if, b.min_retry_interval_seconds, b.timeout_seconds) == (
        ["a"],
        "at_least_one_failed",
        1.5,
        None,
    )
    assert job.parameters == {"day": "2026-01-01"}


def test_a_cycle_in_depends_on_is_refused_with_the_cycle() -> None:
    error = refusal({"name": "loop", "tasks": [sql("a", "c"), sql("b", "a"), sql("c", "b")]})
    cycle = error.details["cycle"]
    assert set(cycle) == {"a", "b", "c"} and cycle[0] == cycle[-1]


def test_an_unknown_dependency_is_refused_with_its_name() -> None:
    error = refusal({"name": "dangling", "tasks": [sql("a", "ghost")]})
    assert error.details["unknown"] == ["ghost"]


def test_duplicate_task_keys_unknown_kinds_and_bad_crons_are_refused() -> None:
    refusal({"name": "twice", "tasks": [sql("a"), sql("a")]})
    refusal({"name": "kind", "tasks": [{"task_key": "a", "kind": "spark_jar"}]})
    refusal({"name": "cron", "tasks": [sql("a")], "schedule": {"quartz_cron_expression": "0 0 * * *"}})
    refusal(
        {"name": "zone", "tasks": [sql("a")], "schedule": {"quartz_cron_expression": "0 0 2 * * ?", "timezone_id": "X"}}
    )
    refusal({"name": "empty", "tasks": []})


def test_task_values_may_only_come_from_upstream_tasks_and_parameters_must_be_declared() -> None:
    refusal({"name": "sideways", "tasks": [sql("a"), sql("b", text="SELECT {{tasks.a.values.rows}}")]})
    refusal({"name": "param", "tasks": [sql("a", text="SELECT {{job.parameters.day}}")]})
    refusal({"name": "junk", "tasks": [sql("a", text="SELECT {{ secrets.key }}")]})
    validate_job(
        {
            "name": "fine",
            "parameters": {"day": "1"},
            "tasks": [
                sql("a"),
                sql("b", "a"),
                sql("c", "b", text="SELECT {{tasks.a.values.rows}}, {{job.parameters.day}}"),
            ],
        },
        catalog=CATALOG,
    )


def test_sql_tasks_write_only_into_silver_or_gold_of_the_callers_catalog() -> None:
    refusal({"name": "bronze", "tasks": [sql("a", text="CREATE OR REPLACE TABLE bronze.x AS SELECT 1 AS one")]})
    refusal(
        {"name": "other", "tasks": [sql("a", text="CREATE OR REPLACE TABLE ts_globex.silver.x AS SELECT 1 AS one")]}
    )
    refusal({"name": "read", "tasks": [sql("a", text="SELECT * FROM ts_globex.bronze.t")]})
    refusal({"name": "drop", "tasks": [sql("a", text="DROP TABLE silver.x")]})
    refusal({"name": "two", "tasks": [sql("a", text="SELECT 1; SELECT 2")]})
    validate_job({"name": "ok", "tasks": [sql("a", text="INSERT INTO gold.x SELECT 1 AS one")]}, catalog=CATALOG)


def test_templates_are_filled_from_the_lookup_and_a_missing_value_is_an_error() -> None:
    assert render({"sql": ["{{ job.run_id }}-{{job.parameters.x}}"]}, {"job.run_id": "r", "job.parameters.x": "1"}) == {
        "sql": ["r-1"]
    }
    with pytest.raises(Exception) as raised:
        render("{{tasks.a.values.rows}}", {})
    assert getattr(raised.value, "code", None) == "invalid_input"
