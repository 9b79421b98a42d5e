"""The bundle's job shape is the SDK's: its field sets, required fields and enum values come from the
databricks-sdk dataclasses, so they follow the SDK the lock file pins."""

from __future__ import annotations

import dataclasses

from databricks.sdk.service import jobs

from servicetsunami.services.bundles.models import job_shape, shape_of


def test_the_job_shape_has_exactly_the_fields_of_the_sdk_job_settings() -> None:
    assert job_shape().keys == {f.name for f in dataclasses.fields(jobs.JobSettings)}


def test_nested_shapes_follow_lists_maps_and_optional_dataclasses() -> None:
    tasks = job_shape().field("tasks")
    assert tasks is not None and tasks.kind == "list"
    task = tasks.item_shape
    assert task.name == "Task" and "task_key" in task.required
    notebook = task.field("notebook_task")
    assert notebook is not None and notebook.required == {"notebook_path"}
    parameters = notebook.field("base_parameters")
    assert parameters is not None and parameters.kind == "map" and parameters.item_shape.kind == "scalar"


def test_enum_fields_take_the_sdk_enum_values() -> None:
    run_if = shape_of(jobs.Task).field("run_if")
    assert run_if is not None and run_if.kind == "enum"
    assert run_if.values == {m.value for m in jobs.RunIf}
