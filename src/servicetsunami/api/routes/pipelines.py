"""Pipelines (the earlier API's name for jobs): create, list, get, update, delete, run, runs, cancel, repair.

The OpenAPI summaries carry the earlier API's tool names (create_job, list_jobs, run_job, ...). Job runs
are also runs: ``GET /runs/{id}`` follows them like any other.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool

from servicetsunami.api.deps import PageDep, PrincipalDep, ServicesDep
from servicetsunami.api.pagination import Page, cursor_key, page_of, timestamp
from servicetsunami.api.schemas.common import COMMON_ERRORS
from servicetsunami.api.schemas.pipelines import (
    PipelineCreate,
    PipelinePause,
    PipelineRepair,
    PipelineRunCreate,
    PipelineUpdate,
)
from servicetsunami.services.pipelines import job_runs, jobs
from servicetsunami.services.pipelines.job_runs import JobRunPublic
from servicetsunami.services.pipelines.jobs import JobPublic

router = APIRouter(prefix="/pipelines", tags=["pipelines"])

MAX_WAIT_SECONDS = 60.0


@router.get(
    "/runs/{run_id}",
    operation_id="get_pipeline_run",
    summary="get_job_run_status",
    response_model=JobRunPublic,
    responses=COMMON_ERRORS,
)
async def get_pipeline_run(
    run_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    wait_seconds: Annotated[float, Query(ge=0, le=MAX_WAIT_SECONDS, description="Answer once it ends, or after")] = 0,
) -> JobRunPublic:
    """A run's state (Pending, Running, Succeeded, Failed, ...) with every task's state, values and error."""
    run = await run_in_threadpool(job_runs.get_job_run, services, principal, run_id)
    if wait_seconds <= 0 or run.finished_at is not None:
        return run
    return await job_runs.await_job_run(services, principal, run_id, timeout=wait_seconds)


@router.post(
    "/runs/{run_id}/cancel",
    operation_id="cancel_pipeline_run",
    summary="cancel_job_run",
    response_model=JobRunPublic,
    responses=COMMON_ERRORS,
)
async def cancel_pipeline_run(run_id: str, services: ServicesDep, principal: PrincipalDep) -> JobRunPublic:
    """Stop a run: its running tasks stop, the tasks not started are marked canceled."""
    return await run_in_threadpool(job_runs.cancel_job_run, services, principal, run_id)


@router.post(
    "/runs/{run_id}/repair",
    operation_id="repair_pipeline_run",
    summary="repair_job_run",
    response_model=JobRunPublic,
    responses=COMMON_ERRORS,
)
async def repair_pipeline_run(
    run_id: str, body: PipelineRepair, services: ServicesDep, principal: PrincipalDep
) -> JobRunPublic:
    """Run the failed and skipped tasks of an ended run again (and what depends on them), as a new attempt."""
    return await run_in_threadpool(
        lambda: job_runs.repair_job_run(services, principal, run_id, tasks=body.tasks, wait_seconds=body.wait_seconds)
    )


@router.post(
    "",
    operation_id="create_pipeline",
    summary="create_job",
    status_code=201,
    response_model=JobPublic,
    responses=COMMON_ERRORS,
)
async def create_pipeline(body: PipelineCreate, services: ServicesDep, principal: PrincipalDep) -> JobPublic:
    """Create a pipeline: a DAG of tasks; a cycle, an unknown dependency or an invalid cron is refused."""
    return await run_in_threadpool(jobs.create_job, services, principal, body.definition())


@router.get(
    "", operation_id="list_pipelines", summary="list_jobs", response_model=Page[JobPublic], responses=COMMON_ERRORS
)
async def list_pipelines(services: ServicesDep, principal: PrincipalDep, page: PageDep) -> Page[JobPublic]:
    """Your pipelines by name, with their schedules and next fire times."""
    after = cursor_key(page.cursor, str, str)
    found = await run_in_threadpool(lambda: jobs.list_jobs(services, principal, after=after, limit=page.limit))
    return page_of(found, key=lambda j: (j.name, j.job_id), limit=page.limit)


@router.get(
    "/{pipeline_id}", operation_id="get_pipeline", summary="get_job", response_model=JobPublic, responses=COMMON_ERRORS
)
async def get_pipeline(pipeline_id: str, services: ServicesDep, principal: PrincipalDep) -> JobPublic:
    """A pipeline's definition, schedule and next fire times."""
    return await run_in_threadpool(jobs.get_job, services, principal, pipeline_id)


@router.put(
    "/{pipeline_id}",
    operation_id="update_pipeline",
    summary="update_job",
    response_model=JobPublic,
    responses=COMMON_ERRORS,
)
async def update_pipeline(
    pipeline_id: str, body: PipelineUpdate, services: ServicesDep, principal: PrincipalDep
) -> JobPublic:
    """Replace a pipeline's definition (runs under way keep the version they started with)."""
    return await run_in_threadpool(jobs.update_job, services, principal, pipeline_id, body.definition())


@router.post(
    "/{pipeline_id}/pause",
    operation_id="pause_pipeline",
    summary="pause_job",
    response_model=JobPublic,
    responses=COMMON_ERRORS,
)
async def pause_pipeline(
    pipeline_id: str, body: PipelinePause, services: ServicesDep, principal: PrincipalDep
) -> JobPublic:
    """Pause or resume a pipeline's schedule (resuming does not catch up on missed ticks)."""
    return await run_in_threadpool(lambda: jobs.set_paused(services, principal, pipeline_id, paused=body.paused))


@router.delete(
    "/{pipeline_id}", operation_id="delete_pipeline", summary="delete_job", status_code=204, responses=COMMON_ERRORS
)
async def delete_pipeline(pipeline_id: str, services: ServicesDep, principal: PrincipalDep) -> Response:
    """Delete a pipeline (refused while one of its runs is under way; its run history stays)."""
    await run_in_threadpool(jobs.delete_job, services, principal, pipeline_id)
    return Response(status_code=204)


@router.post(
    "/{pipeline_id}/run",
    operation_id="run_pipeline",
    summary="run_job",
    status_code=202,
    response_model=JobRunPublic,
    responses=COMMON_ERRORS,
)
async def run_pipeline(
    pipeline_id: str, body: PipelineRunCreate, services: ServicesDep, principal: PrincipalDep
) -> JobRunPublic:
    """Run a pipeline now (the console's Run Pipeline button); poll GET /pipelines/runs/{run_id}."""
    return await run_in_threadpool(
        lambda: job_runs.run_job(
            services, principal, pipeline_id, parameters=body.parameters, wait_seconds=body.wait_seconds
        )
    )


@router.get(
    "/{pipeline_id}/runs",
    operation_id="list_pipeline_runs",
    summary="list_job_runs",
    response_model=Page[JobRunPublic],
    responses=COMMON_ERRORS,
)
async def list_pipeline_runs(
    pipeline_id: str, services: ServicesDep, principal: PrincipalDep, page: PageDep
) -> Page[JobRunPublic]:
    """A pipeline's run history, newest first."""
    after = cursor_key(page.cursor, timestamp, str)
    found = await run_in_threadpool(
        lambda: job_runs.list_job_runs(services, principal, job_id=pipeline_id, after=after, limit=page.limit)
    )
    return page_of(found, key=lambda r: (r.created_at.isoformat(), r.run_id), limit=page.limit)
