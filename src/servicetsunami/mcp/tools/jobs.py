"""Jobs (pipelines) with the earlier API's tool names: ``list_jobs``, ``get_job``, ``create_job``,
``update_job``, ``delete_job``, ``run_job``, ``get_job_run_status``, ``list_job_runs``,
``cancel_job_run``, ``repair_job_run``. Analysts may read jobs and runs; the rest needs write."""

from __future__ import annotations

from typing import Annotated, Any

from fastmcp import FastMCP
from fastmcp.server.context import Context
from fastmcp.tools.base import ToolResult
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from servicetsunami.mcp.auth import Caller
from servicetsunami.mcp.errors import call_service
from servicetsunami.mcp.results import output_schema, tool_result
from servicetsunami.services.container import Services
from servicetsunami.services.pipelines import job_runs, jobs
from servicetsunami.services.pipelines.job_runs import JobRunPublic
from servicetsunami.services.pipelines.jobs import JobPublic
from servicetsunami.services.runs.model import RunPublic

_READ = ToolAnnotations(title="Jobs", read_only_hint=True, open_world_hint=False)
_CREATE = ToolAnnotations(
    title="Create a job", read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
)
_UPDATE = ToolAnnotations(
    title="Update a job", read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
)
_DELETE = ToolAnnotations(
    title="Delete a job", read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False
)
_RUN = ToolAnnotations(
    title="Run a job", read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False
)
_CANCEL = ToolAnnotations(
    title="Cancel a job run", read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
MAX_WAIT_SECONDS = 60.0
JobId = Annotated[str, Field(description="A job id, as create_job or list_jobs gave it")]
RunId = Annotated[str, Field(description="A job run id, as run_job or list_job_runs gave it")]
Wait = Annotated[float, Field(ge=0, le=MAX_WAIT_SECONDS, description="Wait (with progress) at most this long")]
Definition = Annotated[
    dict[str, Any],
    Field(
        description="The job: {name, tasks: [{task_key, kind (sync|transform|gold_refresh|sql|run_job|notebook|"
        "python), "
        "depends_on, run_if (all_success|all_done|at_least_one_failed), max_retries, min_retry_interval_seconds, "
        "retry_on_timeout, timeout_seconds, config}], parameters: {name: default}, schedule: "
        "{quartz_cron_expression, timezone_id, pause_status}, max_concurrent_runs, timeout_seconds, tags}. "
        "The shape {name, config: {tasks: [{name, type, depends_on, config}], schedule}} is accepted too. "
        "Config values may use {{job.parameters.x}}, {{job.run_id}} and {{tasks.<key>.values.<name>}}."
    ),
]


class JobList(BaseModel):
    jobs: list[JobPublic]


class JobRunList(BaseModel):
    runs: list[JobRunPublic]


class Deleted(BaseModel):
    job_id: str
    deleted: bool = True


def register(server: FastMCP, services: Services, caller: Caller) -> None:
    @server.tool(tags={"read"}, annotations=_READ, output_schema=output_schema(JobList))
    async def list_jobs(limit: Annotated[int, Field(ge=1, le=200)] = 50) -> ToolResult:
        """Your jobs (pipelines) by name, with their schedules and next fire times."""
        found = await call_service(jobs.list_jobs, services, caller.principal(), limit=limit)
        return tool_result(JobList(jobs=found[:limit]))

    @server.tool(tags={"read"}, annotations=_READ, output_schema=output_schema(JobPublic))
    async def get_job(job_id: JobId) -> ToolResult:
        """A job's definition, schedule and next fire times."""
        return tool_result(await call_service(jobs.get_job, services, caller.principal(), job_id))

    @server.tool(tags={"write"}, annotations=_CREATE, output_schema=output_schema(JobPublic))
    async def create_job(definition: Definition) -> ToolResult:
        """Create a job: a DAG of tasks with retries, timeouts, parameters and an optional Quartz schedule.
        A cycle, an unknown dependency or an invalid cron is refused with the reason (invalid_job)."""
        return tool_result(await call_service(jobs.create_job, services, caller.principal(), definition))

    @server.tool(tags={"write"}, annotations=_UPDATE, output_schema=output_schema(JobPublic))
    async def update_job(job_id: JobId, definition: Definition) -> ToolResult:
        """Replace a job's definition (runs under way keep the version they started with)."""
        return tool_result(await call_service(jobs.update_job, services, caller.principal(), job_id, definition))

    @server.tool(tags={"write"}, annotations=_DELETE, output_schema=output_schema(Deleted))
    async def delete_job(job_id: JobId) -> ToolResult:
        """Delete a job (refused while one of its runs is under way; its run history stays)."""
        await call_service(jobs.delete_job, services, caller.principal(), job_id)
        return tool_result(Deleted(job_id=job_id))

    @server.tool(tags={"write"}, annotations=_RUN, output_schema=output_schema(JobRunPublic))
    async def run_job(
        job_id: JobId,
        ctx: Context,
        parameters: Annotated[dict[str, str] | None, Field(description="Job parameters for this run")] = None,
        wait_seconds: Wait = 10,
    ) -> ToolResult:
        """Run a job now; answers with the run (and its tasks) after at most wait_seconds. A longer run
        keeps going: follow it with get_job_run_status."""
        principal = caller.principal()
        run_id = await call_service(job_runs.start_job_run, services, principal, job_id, parameters=parameters)
        return tool_result(await _await(services, principal, run_id, ctx, wait_seconds))

    @server.tool(tags={"read"}, annotations=_READ, output_schema=output_schema(JobRunPublic))
    async def get_job_run_status(run_id: RunId, ctx: Context, wait_seconds: Wait = 0) -> ToolResult:
        """A job run's state (Pending, Running, Succeeded, Failed, ...) with every task's state,
        attempts, output values and error."""
        principal = caller.principal()
        if wait_seconds <= 0:
            return tool_result(await call_service(job_runs.get_job_run, services, principal, run_id))
        await call_service(job_runs.get_job_run, services, principal, run_id)
        return tool_result(await _await(services, principal, run_id, ctx, wait_seconds))

    @server.tool(tags={"read"}, annotations=_READ, output_schema=output_schema(JobRunList))
    async def list_job_runs(
        job_id: Annotated[str | None, Field(description="Only the runs of this job")] = None,
        limit: Annotated[int, Field(ge=1, le=200)] = 50,
    ) -> ToolResult:
        """Job runs, newest first (tasks are listed by get_job_run_status)."""
        found = await call_service(job_runs.list_job_runs, services, caller.principal(), job_id=job_id, limit=limit)
        return tool_result(JobRunList(runs=found[:limit]))

    @server.tool(tags={"write"}, annotations=_CANCEL, output_schema=output_schema(JobRunPublic))
    async def cancel_job_run(run_id: RunId) -> ToolResult:
        """Stop a job run: its running tasks stop, the tasks not started are marked canceled."""
        return tool_result(await call_service(job_runs.cancel_job_run, services, caller.principal(), run_id))

    @server.tool(tags={"write"}, annotations=_RUN, output_schema=output_schema(JobRunPublic))
    async def repair_job_run(
        run_id: RunId,
        tasks: Annotated[list[str] | None, Field(description="Only these task_keys (default: the failed ones)")] = None,
        wait_seconds: Wait = 10,
    ) -> ToolResult:
        """Run the failed, timed-out, canceled and skipped tasks of an ended run again, with what depends
        on them, as a new attempt of the same run (its successful tasks keep their results)."""
        return tool_result(
            await call_service(
                job_runs.repair_job_run, services, caller.principal(), run_id, tasks=tasks, wait_seconds=wait_seconds
            )
        )


async def _await(services: Services, principal: Any, run_id: str, ctx: Context, wait_seconds: float) -> JobRunPublic:
    async def report(run: RunPublic) -> None:
        p = run.progress
        await ctx.report_progress(float(p.done or 0), p.total, p.message or run.state)

    return await job_runs.await_job_run(services, principal, run_id, timeout=wait_seconds, on_progress=report)
