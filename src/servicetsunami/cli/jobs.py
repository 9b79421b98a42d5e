"""``tsunami jobs``: pipelines of tasks: list, create -f job.yaml, run --wait (a live task table), runs,
status, cancel, repair, pause, resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from servicetsunami.cli.common import console, id_column, key_principal, open_services, print_json_rows

if TYPE_CHECKING:
    from servicetsunami.services.pipelines.job_runs import JobRunPublic

app = typer.Typer(help="Jobs (pipelines): DAGs of tasks with retries, timeouts and schedules.", no_args_is_help=True)

_ENDED_BADLY = ("failed", "canceled", "timed_out")


@app.command("list")
def jobs_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Your jobs, with their schedules and next fire times."""
    from servicetsunami.services.pipelines import jobs

    with open_services() as svc:
        found = jobs.list_jobs(svc, key_principal(svc), limit=500)[:500]
    if as_json:
        print_json_rows(found)
        return
    table = Table(
        id_column("job", (j.job_id for j in found)), "name", "tasks", "schedule", "next fire (UTC)", "version"
    )
    for job in found:
        schedule = job.schedule or {}
        cron = f"{schedule.get('quartz_cron_expression')} {schedule.get('timezone_id')}" if schedule else ""
        if job.paused:
            cron += " (paused)"
        following = job.next_fire_times[0].isoformat(timespec="seconds") if job.next_fire_times else ""
        table.add_row(job.job_id, job.name, str(len(job.definition["tasks"])), cron, following, str(job.version))
    console.print(table)


@app.command("create")
def jobs_create(
    file: Annotated[Path, typer.Option("-f", "--file", exists=True, dir_okay=False, help="The job as YAML or JSON")],
    update: Annotated[str | None, typer.Option(help="Replace this job's definition instead")] = None,
) -> None:
    """Create a job from a YAML or JSON file (ours or the earlier API's pipeline shape)."""
    import yaml

    from servicetsunami.services.pipelines import jobs

    try:
        definition: Any = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        console.print(f"[red]{file.name} is not YAML or JSON: {str(exc).splitlines()[0]}[/red]")
        raise typer.Exit(2) from None
    with open_services() as svc:
        principal = key_principal(svc)
        if update:
            job = jobs.update_job(svc, principal, update, definition)
        else:
            job = jobs.create_job(svc, principal, definition)
    console.print(f"{job.job_id}: {job.name} (version {job.version})")


@app.command("run")
def jobs_run(
    job_id: Annotated[str, typer.Argument(help="Job id")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="name=value job parameter")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the end with a live table of the tasks")] = False,
    timeout: Annotated[float, typer.Option(min=1, help="Most seconds to wait")] = 3600,
) -> None:
    """Run a job now. With --wait: a live task table, and exit 1 unless it succeeded."""
    from servicetsunami.services.pipelines import job_runs

    parameters = dict(_pair(p) for p in param or [])
    with open_services() as svc:
        principal = key_principal(svc)
        run_id = job_runs.start_job_run(svc, principal, job_id, parameters=parameters)
        if not wait:
            console.print(run_id)
            return
        run = _follow(svc, principal, run_id, timeout)
    _end(run)


@app.command("status")
def jobs_status(
    run_id: Annotated[str, typer.Argument(help="Job run id")],
    wait: Annotated[float, typer.Option(min=0, help="Follow it (live table) up to this many seconds")] = 0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One job run with its tasks. Exits 1 if it failed, was canceled or timed out."""
    from servicetsunami.services.pipelines import job_runs

    with open_services() as svc:
        principal = key_principal(svc)
        run = _follow(svc, principal, run_id, wait) if wait > 0 else job_runs.get_job_run(svc, principal, run_id)
    if as_json:
        console.print_json(run.model_dump_json())
    else:
        console.print(task_table(run))
    if run.state in _ENDED_BADLY:
        raise typer.Exit(1)


@app.command("runs")
def jobs_runs(
    job_id: Annotated[str | None, typer.Argument(help="Only this job's runs")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Job runs, newest first."""
    from servicetsunami.services.pipelines import job_runs

    with open_services() as svc:
        found = job_runs.list_job_runs(svc, key_principal(svc), job_id=job_id, limit=limit)[:limit]
    if as_json:
        print_json_rows(found)
        return
    table = Table(
        id_column("run", (r.run_id for r in found)), "job", "status", "trigger", "tasks", "started", "seconds", "error"
    )
    for run in found:
        p = run.progress
        tasks = f"{p.done:g}/{p.total:g}" if p.done is not None and p.total else ""
        started = run.started_at.isoformat(timespec="seconds") if run.started_at else ""
        seconds = f"{run.duration_seconds:g}" if run.duration_seconds is not None else ""
        table.add_row(run.run_id, run.job_name, run.status, run.trigger, tasks, started, seconds, run.error_code or "")
    console.print(table)


@app.command("cancel")
def jobs_cancel(run_id: Annotated[str, typer.Argument(help="Job run id")]) -> None:
    """Stop a job run: running tasks stop, the others are marked canceled."""
    from servicetsunami.services.pipelines import job_runs

    with open_services() as svc:
        run = job_runs.cancel_job_run(svc, key_principal(svc), run_id)
    console.print(task_table(run))


@app.command("repair")
def jobs_repair(
    run_id: Annotated[str, typer.Argument(help="Job run id")],
    task: Annotated[list[str] | None, typer.Option("--task", help="Only these task_keys (default: the failed)")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow it with a live task table")] = False,
    timeout: Annotated[float, typer.Option(min=1)] = 3600,
) -> None:
    """Run the failed and skipped tasks of an ended run again, with what depends on them."""
    from servicetsunami.services.pipelines import job_runs

    with open_services() as svc:
        principal = key_principal(svc)
        run = job_runs.repair_job_run(svc, principal, run_id, tasks=task, wait_seconds=0)
        if wait:
            run = _follow(svc, principal, run_id, timeout)
    _end(run)


@app.command("pause")
def jobs_pause(job_id: Annotated[str, typer.Argument(help="Job id")]) -> None:
    """Pause a job's schedule."""
    _set_paused(job_id, paused=True)


@app.command("resume")
def jobs_resume(job_id: Annotated[str, typer.Argument(help="Job id")]) -> None:
    """Resume a job's schedule from its next tick (missed ticks are not run)."""
    _set_paused(job_id, paused=False)


def _set_paused(job_id: str, *, paused: bool) -> None:
    from servicetsunami.services.pipelines import jobs

    with open_services() as svc:
        job = jobs.set_paused(svc, key_principal(svc), job_id, paused=paused)
    following = job.next_fire_times[0].isoformat(timespec="seconds") if job.next_fire_times else "none"
    console.print(f"{job.job_id}: {'paused' if job.paused else f'next fire {following}'}")


def task_table(run: JobRunPublic) -> Table:
    """The tasks of a run as a table (the live view of ``run --wait``)."""
    title = f"{run.job_name} · run {run.run_id[:8]} · {run.status}"
    if run.repair:
        title += f" · repair {run.repair}"
    table = Table("task", "kind", "state", "attempts", "seconds", "values / error", title=title)
    for task in run.tasks:
        seconds = ""
        if task["started_at"] and task["finished_at"]:
            from datetime import datetime

            began, ended = datetime.fromisoformat(task["started_at"]), datetime.fromisoformat(task["finished_at"])
            seconds = f"{(ended - began).total_seconds():.2f}"
        detail = task["error"] or (json.dumps(task["values"]) if task["values"] else "")
        table.add_row(task["task_key"], task["kind"], task["state"], str(task["attempts"]), seconds, detail[:80])
    return table


def _follow(svc: Any, principal: Any, run_id: str, timeout: float) -> JobRunPublic:
    from rich.live import Live

    from servicetsunami.services.pipelines import job_runs

    run = job_runs.get_job_run(svc, principal, run_id)
    with Live(task_table(run), console=console, refresh_per_second=4, transient=False) as live:

        def show(status: JobRunPublic) -> None:
            live.update(task_table(status))

        run = job_runs.wait_job_run(svc, principal, run_id, timeout=timeout, on_progress=show)
        live.update(task_table(run))
    return run


def _end(run: JobRunPublic) -> None:
    if run.state in _ENDED_BADLY:
        console.print(f"[red]{run.status}: {run.error or run.error_code}[/red]")
        raise typer.Exit(1)


def _pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise typer.BadParameter(f"--param takes name=value, not {text!r}")
    return name, value
