"""A job's definition: tasks, dependencies, retries, timeouts, parameters and an optional schedule.

Two input shapes are accepted and stored as one:

- ours (close to Databricks Jobs 2.2): ``{"name", "tasks": [{"task_key", "kind", "depends_on":
  ["a"], "run_if", "max_retries", "min_retry_interval_seconds", "retry_on_timeout",
  "timeout_seconds", "config"}], "parameters": {"x": "default"}, "schedule":
  {"quartz_cron_expression", "timezone_id", "pause_status"}, "max_concurrent_runs", "tags"}``;
- the earlier API's pipeline config, as written: ``{"name", "config": {"tasks": [{"name", "type",
  "depends_on", "config"}], "schedule": {...}}}`` (and Databricks' spellings: ``depends_on:
  [{"task_key"}]``, ``run_if: "ALL_SUCCESS"``, ``min_retry_interval_millis``, ``parameters: [{"name",
  "default"}]``).

:func:`validate_job` checks what a schema cannot: unique task keys, known dependencies, no cycle
(``graphlib``), a valid Quartz expression, each task's config against its kind, and template
references (``{{tasks.<key>.values.<name>}}`` only to an upstream task, ``{{job.parameters.x}}``
only to a declared parameter).
"""

from __future__ import annotations

import graphlib
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from servicetsunami.errors import InvalidInput, InvalidJob, NotSupported, PermissionDenied
from servicetsunami.services.pipelines import kinds, quartz

RunIf = Literal["all_success", "all_done", "at_least_one_failed"]
TASK_KEY = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
TEMPLATE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_REFERENCE = re.compile(
    r"^(?:job\.run_id|job\.id|job\.parameters\.(?P<param>[A-Za-z0-9_]+)|"
    r"tasks\.(?P<task>[A-Za-z0-9_-]+)\.values\.(?P<value>[A-Za-z0-9_]+))$"
)


class TaskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task_key: str = Field(description="Unique within the job: letters, digits, _ and -")
    kind: str = Field(description="sync, transform, gold_refresh, sql, run_job, notebook or python")
    depends_on: list[str] = Field(default_factory=list, description="task_keys that must end first")
    run_if: RunIf = Field(
        "all_success",
        description="When it runs once its dependencies ended: all_success, all_done, at_least_one_failed",
    )
    max_retries: int = Field(0, ge=0, le=20, description="Extra attempts after a failure")
    min_retry_interval_seconds: float = Field(
        0.0, ge=0, le=3600, description="Wait before the first retry; doubled for each further one"
    )
    retry_on_timeout: bool = Field(False, description="Whether a timed-out attempt is retried too")
    timeout_seconds: float | None = Field(None, gt=0, le=86_400, description="Stop an attempt after this long")
    description: str | None = Field(None, max_length=1000)
    config: dict[str, Any] = Field(default_factory=dict, description="What the kind needs (see the kind's fields)")

    @model_validator(mode="before")
    @classmethod
    def _other_shapes(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "name" in data and "task_key" not in data:
            data["task_key"] = data.pop("name")
        if "type" in data and "kind" not in data:
            data["kind"] = data.pop("type")
        if isinstance(data.get("depends_on"), list):
            data["depends_on"] = [d.get("task_key") if isinstance(d, dict) else d for d in data["depends_on"]]
        if isinstance(data.get("run_if"), str):
            data["run_if"] = data["run_if"].lower()
        if "min_retry_interval_millis" in data and "min_retry_interval_seconds" not in data:
            millis = data.pop("min_retry_interval_millis")
            data["min_retry_interval_seconds"] = millis / 1000 if isinstance(millis, int | float) else millis
        if data.get("timeout_seconds") == 0:  # Databricks: 0 means no timeout
            data["timeout_seconds"] = None
        return data

    @field_validator("task_key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not TASK_KEY.fullmatch(value):
            raise ValueError("task_key is 1-100 letters, digits, '_' or '-'")
        return value


class ScheduleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quartz_cron_expression: str = Field(description="Quartz cron, seconds first: '0 0 2 * * ?' is 02:00 every day")
    timezone_id: str = Field("UTC", description="IANA time zone the expression is read in")
    pause_status: Literal["PAUSED", "UNPAUSED"] = "UNPAUSED"
    catch_up: bool = Field(
        False, description="Run ticks missed while the service was down (default: skip them, as Databricks does)"
    )


class JobSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    tasks: list[TaskSpec] = Field(min_length=1, max_length=500)
    parameters: dict[str, str] = Field(default_factory=dict, description="Job parameters and their defaults")
    schedule: ScheduleSpec | None = None
    max_concurrent_runs: int = Field(1, ge=1, le=100)
    timeout_seconds: float | None = Field(None, gt=0, le=7 * 86_400, description="Stop the whole run after this long")
    tags: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _other_shapes(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        config = data.pop("config", None)
        if isinstance(config, dict):  # the earlier API's pipeline: {"name", "config": {"tasks", "schedule"}}
            for key, value in config.items():
                data.setdefault(key, value)
        params = data.get("parameters")
        if isinstance(params, list):  # Databricks: [{"name", "default"}]
            data["parameters"] = {
                p.get("name"): str(p.get("default", "")) for p in params if isinstance(p, dict) and p.get("name")
            }
        if data.get("timeout_seconds") == 0:
            data["timeout_seconds"] = None
        return data

    @field_validator("parameters")
    @classmethod
    def _parameter_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9_]{1,100}", name):
                raise ValueError(f"parameter name {name!r} is not letters, digits and '_'")
        return value

    def task(self, key: str, /) -> TaskSpec:
        for task in self.tasks:
            if task.task_key == key:
                return task
        raise KeyError(key)

    def graph(self) -> dict[str, set[str]]:
        return {t.task_key: set(t.depends_on) for t in self.tasks}


def validate_job(raw: dict[str, Any], /, *, catalog: str) -> JobSpec:
    """Parse and check a job definition (see the module docstring); :class:`InvalidJob` says why not."""
    if not isinstance(raw, dict):
        raise InvalidJob("a job is a JSON object with a name and tasks")
    try:
        job = JobSpec.model_validate(raw)
    except ValidationError as exc:
        raise InvalidJob(_first_errors(exc)) from None
    keys = [t.task_key for t in job.tasks]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise InvalidJob(f"task_key must be unique; repeated: {', '.join(duplicates)}")
    for task in job.tasks:
        unknown = [d for d in task.depends_on if d not in keys]
        if unknown:
            raise InvalidJob(
                f"task {task.task_key!r} depends on unknown task(s) {', '.join(map(repr, unknown))}",
                task_key=task.task_key,
                unknown=unknown,
            )
    try:
        graphlib.TopologicalSorter(job.graph()).prepare()
    except graphlib.CycleError as exc:
        cycle = list(exc.args[1])
        raise InvalidJob(f"the tasks depend on each other in a cycle: {' -> '.join(cycle)}", cycle=cycle) from None
    if job.schedule is not None:
        try:
            quartz.parse(job.schedule.quartz_cron_expression, job.schedule.timezone_id)
        except InvalidInput as exc:
            raise InvalidJob(f"schedule: {exc.message}") from None
    upstream = _upstream(job)
    for task in job.tasks:
        _check_task(job, task, upstream[task.task_key], catalog)
    return job


def _check_task(job: JobSpec, task: TaskSpec, upstream: set[str], catalog: str) -> None:
    kind = kinds.get(task.kind)
    if kind is None:
        names = ", ".join(sorted(kinds.registered()))
        raise InvalidJob(f"task {task.task_key!r}: unknown kind {task.kind!r} (one of {names})", task_key=task.task_key)
    for text in _strings(task.config):
        for reference in TEMPLATE.findall(text):
            match = _REFERENCE.fullmatch(reference)
            if match is None:
                raise InvalidJob(
                    f"task {task.task_key!r}: {{{{{reference}}}}} is not a known reference (job.run_id, "
                    "job.parameters.<name>, tasks.<task_key>.values.<name>)",
                    task_key=task.task_key,
                )
            if match["param"] is not None and match["param"] not in job.parameters:
                raise InvalidJob(
                    f"task {task.task_key!r} uses job parameter {match['param']!r}, which the job does not declare",
                    task_key=task.task_key,
                )
            if match["task"] is not None and match["task"] not in upstream:
                raise InvalidJob(
                    f"task {task.task_key!r} uses the values of {match['task']!r}, which is not one of its "
                    "upstream tasks (add it to depends_on)",
                    task_key=task.task_key,
                )
    try:
        config = kind.config.model_validate(task.config)
    except ValidationError as exc:
        raise InvalidJob(
            f"task {task.task_key!r} ({task.kind}): {_first_errors(exc)}", task_key=task.task_key
        ) from None
    if kind.check is not None and not has_templates(task.config):
        try:
            kind.check(config, catalog)
        except (InvalidInput, PermissionDenied, NotSupported) as exc:
            raise InvalidJob(f"task {task.task_key!r} ({task.kind}): {exc.message}", task_key=task.task_key) from None


def _upstream(job: JobSpec) -> dict[str, set[str]]:
    graph = job.graph()
    out: dict[str, set[str]] = {}
    for key in graphlib.TopologicalSorter(graph).static_order():
        seen: set[str] = set()
        for dep in graph[key]:
            seen |= {dep, *out[dep]}
        out[key] = seen
    return out


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def has_templates(config: dict[str, Any]) -> bool:
    return any(TEMPLATE.search(s) for s in _strings(config))


def render(value: Any, lookup: dict[str, str], /) -> Any:
    """``value`` with every ``{{reference}}`` in its strings replaced from ``lookup`` (InvalidInput
    when one has no value, e.g. an upstream task that produced none)."""
    if isinstance(value, str):

        def one(match: re.Match[str]) -> str:
            key = match.group(1)
            if key not in lookup:
                raise InvalidInput(f"{{{{{key}}}}} has no value in this run")
            return lookup[key]

        return TEMPLATE.sub(one, value)
    if isinstance(value, dict):
        return {k: render(v, lookup) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, lookup) for v in value]
    return value


def _first_errors(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"{where}: {error['msg']}" if where else error["msg"])
    return "; ".join(parts)
