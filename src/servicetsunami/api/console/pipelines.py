"""Pipelines (jobs): the list, a job's DAG and its run history, its schedule (set, removed, paused,
resumed, with the next fire times), starting a run with parameters, and a run's tasks, updated in
place while it runs, with cancel and repair."""

from __future__ import annotations

import graphlib
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from servicetsunami.api.console.render import ConsoleRoute, SessionDep, call, page
from servicetsunami.api.deps import ServicesDep
from servicetsunami.services.pipelines import job_runs, jobs

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
HISTORY = 25
PARAMETER_PREFIX = "param."


def stages(tasks: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The tasks in columns: each column's tasks depend only on tasks of earlier columns."""
    by_key = {t["task_key"]: t for t in tasks}
    sorter = graphlib.TopologicalSorter(
        {k: [d for d in t.get("depends_on") or [] if d in by_key] for k, t in by_key.items()}
    )
    sorter.prepare()
    columns: list[list[dict[str, Any]]] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        columns.append([by_key[k] for k in ready])
        sorter.done(*ready)
    return columns


@router.get("/pipelines")
async def pipelines_page(request: Request, services: ServicesDep, current: SessionDep) -> Response:
    principal = current.principal
    listed = await call(lambda: jobs.list_jobs(services, principal))
    recent = await call(lambda: job_runs.list_job_runs(services, principal, limit=HISTORY))
    return page(request, services, current, "pipelines.html", {"jobs": listed, "runs": recent[:HISTORY]})


@router.get("/pipelines/runs/{run_id}")
async def run_page(request: Request, services: ServicesDep, current: SessionDep, run_id: str) -> Response:
    principal = current.principal
    run = await call(lambda: job_runs.get_job_run(services, principal, run_id))
    return page(request, services, current, "pipeline_run.html", {"run": run, "stages": stages(run.tasks)})


@router.post("/pipelines/runs/{run_id}/cancel")
async def cancel(request: Request, services: ServicesDep, current: SessionDep, run_id: str) -> Response:
    principal = current.principal
    await call(lambda: job_runs.cancel_job_run(services, principal, run_id, wait_seconds=5.0))
    return RedirectResponse(f"/pipelines/runs/{run_id}", status_code=303)


@router.post("/pipelines/runs/{run_id}/repair")
async def repair(request: Request, services: ServicesDep, current: SessionDep, run_id: str) -> Response:
    principal = current.principal
    await call(lambda: job_runs.repair_job_run(services, principal, run_id, wait_seconds=0.0))
    return RedirectResponse(f"/pipelines/runs/{run_id}", status_code=303)


@router.get("/pipelines/{job_id}")
async def job_page(request: Request, services: ServicesDep, current: SessionDep, job_id: str) -> Response:
    principal = current.principal
    job = await call(lambda: jobs.get_job(services, principal, job_id))
    history = await call(lambda: job_runs.list_job_runs(services, principal, job_id=job_id, limit=HISTORY))
    tasks = [{**t, "state": None} for t in job.definition.get("tasks", [])]
    host = services.settings.databricks.host.rstrip("/")
    workspace_job = f"{host}/jobs/{job.databricks_job_id}" if host and job.databricks_job_id is not None else None
    context = {
        "job": job,
        "runs": history[:HISTORY],
        "stages": stages(tasks),
        "prefix": PARAMETER_PREFIX,
        "workspace_job": workspace_job,
    }
    return page(request, services, current, "pipeline.html", context)


@router.post("/pipelines/{job_id}/runs")
async def start(request: Request, services: ServicesDep, current: SessionDep, job_id: str) -> Response:
    principal = current.principal
    form = await request.form()
    parameters = {
        str(k)[len(PARAMETER_PREFIX) :]: str(v) for k, v in form.multi_items() if str(k).startswith(PARAMETER_PREFIX)
    }
    run_id = await call(lambda: job_runs.start_job_run(services, principal, job_id, parameters=parameters))
    return RedirectResponse(f"/pipelines/runs/{run_id}", status_code=303)


@router.post("/pipelines/{job_id}/schedule")
async def set_schedule(
    request: Request,
    services: ServicesDep,
    current: SessionDep,
    job_id: str,
    cron: Annotated[str, Form()] = "",
    timezone: Annotated[str, Form()] = "UTC",
) -> Response:
    """Set the job's Quartz schedule (a new version of the job, checked as any update is), or remove
    it when the expression is left empty; a paused schedule stays paused."""
    principal = current.principal
    job = await call(lambda: jobs.get_job(services, principal, job_id))
    definition = dict(job.definition)
    if cron.strip():
        paused = "PAUSED" if job.paused else "UNPAUSED"
        definition["schedule"] = {
            **(job.schedule or {}),  # settings the form does not show (catch_up) are kept
            "quartz_cron_expression": cron.strip(),
            "timezone_id": timezone.strip() or "UTC",
            "pause_status": paused,
        }
    else:
        definition.pop("schedule", None)
    await call(lambda: jobs.update_job(services, principal, job_id, definition))
    return RedirectResponse(f"/pipelines/{job_id}", status_code=303)


@router.post("/pipelines/{job_id}/pause")
async def pause(request: Request, services: ServicesDep, current: SessionDep, job_id: str) -> Response:
    principal = current.principal
    await call(lambda: jobs.set_paused(services, principal, job_id, paused=True))
    return RedirectResponse(f"/pipelines/{job_id}", status_code=303)


@router.post("/pipelines/{job_id}/resume")
async def resume(request: Request, services: ServicesDep, current: SessionDep, job_id: str) -> Response:
    principal = current.principal
    await call(lambda: jobs.set_paused(services, principal, job_id, paused=False))
    return RedirectResponse(f"/pipelines/{job_id}", status_code=303)
