"""Notebook runs on the Databricks engine: the run's notebook version is put into the workspace (where
``publish_notebook`` puts it) and run there with runs submit (one ``notebook_task`` with the
parameters as ``base_parameters``), followed with runs get, and its exit value read with runs
get-output (``notebook_output.result``). Cancel (and the run's timeout) calls runs cancel. The run
stays a ``notebook_run``; a worker that takes over a run follows the same workspace run (its id is
kept in the run's progress, and the submit's idempotency token is the run id)."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from servicetsunami.errors import CodeFailed, EngineError, TsunamiError
from servicetsunami.services.notebooks import source_format as sf
from servicetsunami.services.notebooks.notebooks import load
from servicetsunami.services.notebooks.workspace import workspace_path

if TYPE_CHECKING:
    from servicetsunami.engines.databricks.jobs import DatabricksJobs
    from servicetsunami.services.container import Services
    from servicetsunami.services.runs.context import RunContext

logger = logging.getLogger(__name__)

_POLL_SECONDS = 0.5
_CANCEL_WAIT_SECONDS = 60.0
_TERMINAL = frozenset({"TERMINATED", "SKIPPED", "INTERNAL_ERROR"})


def _jobs(svc: Services) -> DatabricksJobs:
    from servicetsunami.engines.databricks.engine import DatabricksEngine
    from servicetsunami.engines.databricks.jobs import DatabricksJobs

    engine = svc.engine
    if not isinstance(engine, DatabricksEngine):
        raise EngineError("this notebook run belongs to the Databricks engine, and the engine is not Databricks now")
    return DatabricksJobs(engine.ws)


def execute_remote(svc: Services, ctx: RunContext) -> dict[str, Any]:
    """A notebook run's handler on the Databricks engine."""
    principal = ctx.principal
    api = _jobs(svc)
    notebook_id = str(ctx.params["notebook_id"])
    facts, nb = load(svc, principal, notebook_id, version=ctx.params.get("version"))
    params = {str(k): str(v) for k, v in (ctx.params.get("parameters") or {}).items()}
    target = workspace_path(svc, principal, facts.path)
    remote_id = ctx.last_progress.get("databricks_run_id")
    if remote_id is None:
        ctx.progress(message="publishing the notebook to the workspace", force=True)
        svc.engine.put_workspace_notebook(target, sf.to_source(nb), language=sf.notebook_language(nb))
        remote_id = api.submit_notebook(
            target, parameters=params, run_name=f"notebook {facts.path}", idempotency_token=ctx.run_id
        )
    run_id = int(remote_id)
    ctx.progress(force=True, databricks_run_id=run_id, workspace_path=target, message="running in the workspace")
    run = _follow(svc, ctx, api, run_id)
    ctx.raise_if_cancelled()
    state = run.get("state") or {}
    tasks = run.get("tasks") or []
    output = api.run_output(int(tasks[0]["run_id"])) if tasks else {}
    result = str(state.get("result_state") or "")
    if result != "SUCCESS":
        why = output.get("error") or state.get("state_message") or result or state.get("life_cycle_state")
        raise CodeFailed(f"the Databricks run {run_id} of {facts.path} ended {result or 'without a result'}: {why}")
    ctx.progress(message="done", force=True)
    return {
        "notebook_id": notebook_id,
        "notebook_version": facts.version,
        "exit_value": (output.get("notebook_output") or {}).get("result"),
        "databricks_run_id": run_id,
        "workspace_path": target,
        "run_page_url": run.get("run_page_url"),
    }


def _follow(svc: Services, ctx: RunContext, api: DatabricksJobs, run_id: int, /) -> dict[str, Any]:
    """Poll the workspace run to its end; a cancel of ours cancels it there (and waits for it to stop)."""
    cancel_sent_at: float | None = None
    while True:
        try:
            run = api.get_run(run_id)
        except TsunamiError as exc:
            if not exc.is_transient:
                raise
            logger.warning("notebook run %s: %s; trying again", ctx.run_id, exc.message)
            svc.launcher.wait_change(_POLL_SECONDS)
            continue
        if str((run.get("state") or {}).get("life_cycle_state", "PENDING")) in _TERMINAL:
            return run
        if ctx.cancelled and ctx.cancel_reason not in ("shutdown", "lost"):
            if cancel_sent_at is None:
                api.cancel_run(run_id)
                cancel_sent_at = time.monotonic()
            elif time.monotonic() - cancel_sent_at > _CANCEL_WAIT_SECONDS:
                return run
        elif ctx.cancelled:
            ctx.raise_if_cancelled()  # the service is stopping: another worker follows the same run
        svc.launcher.wait_change(_POLL_SECONDS)
