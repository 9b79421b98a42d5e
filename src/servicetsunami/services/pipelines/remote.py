"""Jobs on the Databricks engine: each job is compiled into a Jobs API 2.2 job, and its runs are that
job's runs.

The doors and the run model stay the same: a job run is still a ``job_run`` run of ours (owner,
history, wait, cancel), but its handler (:func:`follow`) starts the workspace's run with ``run_now``
(the job run's id as ``idempotency_token``, so a second worker that takes the run over gets the same
workspace run) and follows it with ``get_run`` until it ends; the task states shown are the
workspace's (:func:`remote_states`). Cancel calls ``cancel_run``, repair ``repair_run``.

Compilation (:func:`compile_job`):

- ``sql``: the statement is checked by the guard for the tenant's catalog as locally, written fully
  qualified into a workspace file (a ``sql_task`` carries no inline SQL) under the tenant's folder
  ``<databricks.workspace_folder>/<catalog>/jobs/<job id>/<task_key>.sql``, and named by
  ``sql_task.file``; statements with ``{{...}}`` references are refused here;
- ``notebook``: ``notebook_task.notebook_path`` is where ``publish_notebook`` puts the tenant's
  notebook (``<databricks.workspace_folder>/<catalog>/<notebook path>``); ``base_parameters`` pass
  through (Databricks reads the same ``{{job.parameters.x}}`` references);
- ``run_job``: ``run_job_task`` with the other job's workspace job id.

The schedule becomes ``quartz_cron_expression`` + ``timezone_id`` + ``pause_status``; the workspace
fires it, so the local ticker leaves such jobs alone.

A job the Jobs API cannot express (:func:`service_reason`) stays with this service's own runner, on
the same engine: a ``sync`` (the workspace cannot reach the service's sources), a ``transform`` or
``gold_refresh`` (the stored silver spec and gold definition, their checks and lineage, live here), a
``python`` task, an ``sql`` statement with ``{{...}}`` references, a notebook named by id, or a
``run_job`` of a job that is itself run here. Its statements still run on the SQL warehouse, its syncs
land through the engine, its notebooks run as one-time workspace runs, and its schedule is fired by
the service's ticker. :func:`describe` says which, and why, for the doors.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, cast

from servicetsunami.errors import EngineError, JobRunFailed, NotFound, NotSupported, TsunamiError
from servicetsunami.services.catalog.views import expand_views
from servicetsunami.services.notebooks.workspace import workspace_path as notebook_workspace_path
from servicetsunami.services.pipelines.spec import JobSpec, TaskSpec, has_templates
from servicetsunami.services.pipelines.tasks import SqlConfig, plan_sql, statement_text
from servicetsunami.store.repositories import jobs as jobs_repo

if TYPE_CHECKING:
    from servicetsunami.engines.databricks.jobs import DatabricksJobs
    from servicetsunami.services.container import Services
    from servicetsunami.services.pipelines.runner import TaskState
    from servicetsunami.services.runs.context import RunContext
    from servicetsunami.tenancy import Principal

logger = logging.getLogger(__name__)

META_JOB_ID = "databricks_job_id"
META_SERVICE_REASON = "service_reason"  # on the Databricks engine: why this service runs the job
_POLL_SECONDS = 0.5
_CANCEL_WAIT_SECONDS = 60.0
_RUN_IF = {"all_success": "ALL_SUCCESS", "all_done": "ALL_DONE", "at_least_one_failed": "AT_LEAST_ONE_FAILED"}
_TERMINAL = frozenset({"TERMINATED", "SKIPPED", "INTERNAL_ERROR"})
_RESULT_STATES = {
    "SUCCESS": ("succeeded", None),
    "SUCCESS_WITH_FAILURES": ("succeeded", None),
    "FAILED": ("failed", "task_failed"),
    "TIMEDOUT": ("timed_out", "timed_out"),
    "CANCELED": ("canceled", "cancelled"),
    "MAXIMUM_CONCURRENT_RUNS_REACHED": ("failed", "conflict"),
    "UPSTREAM_FAILED": ("skipped", "upstream_failed"),
    "UPSTREAM_CANCELED": ("skipped", "upstream_failed"),
    "EXCLUDED": ("skipped", "excluded"),
    "DISABLED": ("skipped", "excluded"),
}
_LIFE_CYCLE = {
    "PENDING": "queued",
    "QUEUED": "queued",
    "BLOCKED": "pending",
    "WAITING_FOR_RETRY": "waiting_retry",
    "RUNNING": "running",
    "TERMINATING": "running",
    "SKIPPED": "skipped",
    "INTERNAL_ERROR": "failed",
}


def jobs_api(svc: Services, /) -> DatabricksJobs | None:
    """The workspace's Jobs API when the engine is Databricks, else None (jobs run locally)."""
    from servicetsunami.engines.databricks.engine import DatabricksEngine
    from servicetsunami.engines.databricks.jobs import DatabricksJobs

    engine = svc.engine
    return DatabricksJobs(engine.ws) if isinstance(engine, DatabricksEngine) else None


def tenant_folder(svc: Services, catalog: str, /) -> str:
    return f"{svc.settings.databricks.workspace_folder.rstrip('/')}/{catalog}"


# -- compiling ----------------------------------------------------------------------------------------


_SERVICE_KINDS = {
    "sync": "the workspace cannot reach this service's sources",
    "transform": "the silver spec, its checks and lineage live in this service",
    "gold_refresh": "the gold definition and its lineage live in this service",
    "python": "python tasks are not available on either engine (a notebook task runs code)",
}


def service_reason(svc: Services, principal: Principal, spec: JobSpec, /) -> str | None:
    """Why ``spec`` cannot be a workspace job (so this service runs it on the same engine), or None.

    Reads the store only for ``run_job`` targets, and writes nothing: it is asked before anything is
    put in the workspace."""
    for task in spec.tasks:
        why = _SERVICE_KINDS.get(task.kind)
        if task.kind == "sql" and has_templates(task.config):
            why = "its statement has {{...}} references, which a workspace SQL file cannot carry"
        elif task.kind == "notebook" and not task.config.get("notebook_path"):
            why = "its notebook is named by id, not by workspace path"
        elif task.kind == "run_job":
            other = str(task.config.get("job_id"))
            with svc.store.session() as session:
                target = jobs_repo.get_job(session, other, tenant_id=principal.tenant_id)
                if target.meta.get(META_JOB_ID) is None:
                    why = f"job {other} runs in this service, so a workspace job cannot start it"
        if why is not None:
            return f"task {task.task_key!r} ({task.kind}): {why}"
    return None


def compile_job(
    svc: Services, principal: Principal, job_id: str, spec: JobSpec, api: DatabricksJobs, /
) -> dict[str, Any]:
    """The Jobs API 2.2 settings of ``spec`` (its SQL written to workspace files first)."""
    tasks = [_task(svc, principal, job_id, spec, task, api) for task in spec.tasks]
    settings = job_settings(spec, tasks)
    settings["tags"] = {**spec.tags, "servicetsunami_catalog": principal.catalog, "servicetsunami_job": job_id}
    return settings


def job_settings(spec: JobSpec, tasks: list[dict[str, Any]], /) -> dict[str, Any]:
    """The job-level Jobs API 2.2 settings of ``spec`` around already compiled ``tasks`` (shared with
    the bundle generator, which compiles the task bodies to bundle-relative paths)."""
    settings: dict[str, Any] = {
        "name": spec.name,
        "tasks": tasks,
        "max_concurrent_runs": spec.max_concurrent_runs,
        "timeout_seconds": int(spec.timeout_seconds or 0),
        "tags": dict(spec.tags),
        "parameters": [{"name": k, "default": v} for k, v in spec.parameters.items()],
    }
    if spec.description:
        settings["description"] = spec.description
    if spec.schedule is not None:
        settings["schedule"] = {
            "quartz_cron_expression": spec.schedule.quartz_cron_expression,
            "timezone_id": spec.schedule.timezone_id,
            "pause_status": spec.schedule.pause_status,
        }
    return settings


def _task(
    svc: Services, principal: Principal, job_id: str, spec: JobSpec, task: TaskSpec, api: DatabricksJobs
) -> dict[str, Any]:
    out = task_settings(task)
    if task.kind == "sql":
        config = SqlConfig.model_validate(task.config)
        if has_templates(task.config):
            raise NotSupported(
                f"task {task.task_key!r}: sql tasks with {{{{...}}}} references are not available on the "
                "Databricks engine; write the values into the statement"
            )
        plan = plan_sql(config.sql, principal.catalog)
        text = statement_text(plan, expand_views(svc, principal, plan.query))
        path = f"{tenant_folder(svc, principal.catalog)}/jobs/{job_id}/{task.task_key}.sql"
        api.put_file(path, text + "\n")
        warehouse = config.warehouse_id or api.ws.warehouse_id()
        out["sql_task"] = {"warehouse_id": warehouse, "file": {"path": path, "source": "WORKSPACE"}}
    elif task.kind == "notebook":
        path = str(task.config.get("notebook_path") or "")
        if not path:
            raise NotSupported(
                f"task {task.task_key!r}: on the Databricks engine a notebook task names its notebook_path"
            )
        out["notebook_task"] = {
            "notebook_path": notebook_workspace_path(svc, principal, "/" + path.strip("/")),
            "base_parameters": dict(task.config.get("base_parameters") or {}),
            "source": "WORKSPACE",
        }
    elif task.kind == "run_job":
        other = str(task.config.get("job_id"))
        with svc.store.session() as session:
            target = jobs_repo.get_job(session, other, tenant_id=principal.tenant_id)
            remote_id = target.meta.get(META_JOB_ID)
        if remote_id is None:
            raise NotFound(f"task {task.task_key!r}: job {other} has no Databricks job to run")
        out["run_job_task"] = {"job_id": int(remote_id), "job_parameters": dict(task.config.get("parameters") or {})}
    else:
        raise NotSupported(
            f"task {task.task_key!r}: {task.kind} tasks are not available on the Databricks engine "
            "(sql, notebook and run_job tasks are)"
        )
    return out


def task_settings(task: TaskSpec, /) -> dict[str, Any]:
    """A task's Jobs API 2.2 fields that do not depend on its kind: dependencies, run_if, retries,
    timeout, description."""
    out: dict[str, Any] = {
        "task_key": task.task_key,
        "depends_on": [{"task_key": d} for d in task.depends_on],
        "run_if": _RUN_IF[task.run_if],
        "max_retries": task.max_retries,
        "min_retry_interval_millis": int(task.min_retry_interval_seconds * 1000),
        "retry_on_timeout": task.retry_on_timeout,
        "timeout_seconds": int(task.timeout_seconds or 0),
    }
    if task.description:
        out["description"] = task.description
    return out


# -- runs ---------------------------------------------------------------------------------------------


def follow(svc: Services, ctx: RunContext, /) -> dict[str, Any]:
    """A job run's handler on the Databricks engine: start the workspace run once, follow it to its end."""
    api = jobs_api(svc)
    if api is None:
        raise EngineError("this job run belongs to a Databricks job, and the engine is not Databricks now")
    params = ctx.params
    remote_id = ctx.last_progress.get("databricks_run_id") or params.get("databricks_run_id")
    if remote_id is None:
        remote_id = api.run_now(
            int(params[META_JOB_ID]),
            parameters=dict(params.get("parameters") or {}),
            idempotency_token=ctx.run_id,
        )
    run_id = int(remote_id)
    ctx.progress(force=True, databricks_run_id=run_id, unit="tasks")
    cancel_sent_at: float | None = None
    while True:
        try:
            run = api.get_run(run_id)
        except TsunamiError as exc:
            if not exc.is_transient:
                raise
            logger.warning("job run %s: %s; trying again", ctx.run_id, exc.message)
            svc.launcher.wait_change(_POLL_SECONDS)
            continue
        states = remote_states(run)
        life = str((run.get("state") or {}).get("life_cycle_state", "PENDING"))
        if life in _TERMINAL:
            break
        if ctx.cancelled and ctx.cancel_reason not in ("shutdown", "lost"):
            if cancel_sent_at is None:
                api.cancel_run(run_id)
                cancel_sent_at = time.monotonic()
            elif time.monotonic() - cancel_sent_at > _CANCEL_WAIT_SECONDS:
                break
        elif ctx.cancelled:
            ctx.raise_if_cancelled()  # the service is stopping: another worker follows the same run
        _progress(ctx, states, final=False)
        svc.launcher.wait_change(_POLL_SECONDS)
    _progress(ctx, states, final=True)
    ctx.raise_if_cancelled()
    result = str((run.get("state") or {}).get("result_state") or "")
    summary = {k: s.public() for k, s in states.items()}
    if result not in ("SUCCESS", "SUCCESS_WITH_FAILURES"):
        bad = [
            s for s in states.values() if s.state not in ("succeeded", "skipped") or s.error_code == "upstream_failed"
        ]
        listed = ", ".join(f"{s.task_key} ({s.error_code or s.state})" for s in bad[:10])
        message = (run.get("state") or {}).get("state_message") or result or life
        raise JobRunFailed(f"the Databricks run {run_id} ended {result or life}: {listed or message}")
    return {"databricks_run_id": run_id, "tasks": summary}


def _progress(ctx: RunContext, states: dict[str, TaskState], *, final: bool) -> None:
    counts: dict[str, int] = {}
    for s in states.values():
        counts[s.state] = counts.get(s.state, 0) + 1
    done = sum(1 for s in states.values() if s.terminal)
    message = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    try:
        ctx.progress(done=done, total=len(states), unit="tasks", message=message, force=final, tasks=counts)
    except TsunamiError as exc:  # progress is for show; the workspace holds the states
        logger.warning("job run %s: progress not recorded: %s", ctx.run_id, exc.message)


def remote_states(run: dict[str, Any], /) -> dict[str, TaskState]:
    """Each task's state as the workspace reports it, in our words."""
    from servicetsunami.services.pipelines.runner import TaskState

    states: dict[str, TaskState] = {}
    for task in sorted(run.get("tasks") or [], key=lambda t: int(t.get("attempt_number") or 0)):
        key = str(task["task_key"])
        kind = "sql" if "sql_task" in task else "notebook" if "notebook_task" in task else "run_job"
        state = states.get(key) or TaskState(key, kind, [d["task_key"] for d in task.get("depends_on") or []])
        states[key] = state
        run_state = task.get("state") or {}
        life = str(run_state.get("life_cycle_state") or "PENDING")
        result = run_state.get("result_state")
        if life == "TERMINATED" and result in _RESULT_STATES:
            state.state, state.error_code = _RESULT_STATES[str(result)]
        else:
            state.state, state.error_code = _LIFE_CYCLE.get(life, "running"), None
        if life == "INTERNAL_ERROR":
            state.error_code = "engine_error"
        state.error = run_state.get("state_message") or None if state.state != "succeeded" else None
        state.run_id = str(task.get("run_id")) if task.get("run_id") is not None else None
        if state.run_id:
            state.run_ids.append(state.run_id)
        state.attempts = int(task.get("attempt_number") or 0) + 1
        state.result = {"databricks_run_id": task.get("run_id"), "run_page_url": task.get("run_page_url")}
        state.started_at = _millis(task.get("start_time"))
        state.finished_at = _millis(task.get("end_time")) if state.terminal else None
    return states


def _millis(value: Any) -> Any:
    from datetime import UTC, datetime

    if not value:
        return None
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


def repair(api: DatabricksJobs, remote_run_id: int, tasks: list[str], /) -> int:
    """Run ``tasks`` (and what depends on them) of a finished workspace run again."""
    run = api.get_run(remote_run_id)
    history = cast(list[dict[str, Any]], run.get("repair_history") or [])
    latest = max((int(h["id"]) for h in history if h.get("type") == "REPAIR" and h.get("id")), default=None)
    return api.repair_run(remote_run_id, tasks=tasks, latest_repair_id=latest)
