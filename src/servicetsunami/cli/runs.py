"""``tsunami runs``: everything that takes time (syncs, mirror replays, ...): list, show, wait, cancel
(on the data folder, or with ``--server URL`` on a running server over REST)."""

from __future__ import annotations

from itertools import islice
from typing import Annotated

import typer
from rich.table import Table

from servicetsunami.cli.common import (
    console,
    id_column,
    key_principal,
    open_services,
    print_json_rows,
    progress_bar,
    remote,
)

app = typer.Typer(help="Runs: syncs, mirror replays and everything else that takes time.", no_args_is_help=True)


@app.command("list")
def runs_list(
    kind: Annotated[str | None, typer.Option(help="Only runs of this kind (sync, ...)")] = None,
    state: Annotated[
        str | None, typer.Option(help="queued | running | succeeded | failed | canceled | timed_out")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Most runs shown, newest first")] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Your runs, newest first."""
    from servicetsunami.services.runs import service as runs
    from servicetsunami.services.runs.model import RunPublic

    with remote() as server:
        if server is not None:
            params = {k: v for k, v in {"kind": kind, "state": state, "limit": limit}.items() if v is not None}
            found = [RunPublic.model_validate(r) for r in islice(server.pages("/runs", **params), limit)]
    if server is None:
        with open_services() as svc:
            found = runs.list_runs(svc, key_principal(svc), kind=kind, state=state, limit=limit)[:limit]
    if as_json:
        print_json_rows(found)
        return
    table = Table(
        id_column("run", (r.run_id for r in found)), "kind", "state", "progress", "started", "seconds", "error"
    )
    for run in found:
        p = run.progress
        done = f"{p.done:g} {p.unit or ''}".strip() if p.done is not None else ""
        started = run.started_at.isoformat(timespec="seconds") if run.started_at else ""
        seconds = f"{run.duration_seconds:g}" if run.duration_seconds is not None else ""
        table.add_row(run.run_id, run.kind, run.state, done, started, seconds, run.error_code or "")
    console.print(table)


@app.command("get")
def runs_get(
    run_id: Annotated[str, typer.Argument(help="Run id")],
    wait: Annotated[
        float, typer.Option(min=0, help="Wait up to this many seconds for it to end, with a progress bar")
    ] = 0,
) -> None:
    """One run: state, progress, result or error. Exits 1 if it failed, was canceled or timed out."""
    from servicetsunami.services.runs import service as runs
    from servicetsunami.services.runs.model import RunPublic

    with remote() as server:
        if server is not None:
            answer = server.wait_run(run_id, wait) if wait > 0 else server.call("GET", f"/runs/{run_id}")
            run = RunPublic.model_validate(answer)
    if server is None:
        with open_services() as svc:
            principal = key_principal(svc)
            if wait <= 0:
                run = runs.get_run(svc, principal, run_id)
            else:
                with progress_bar(f"run {run_id[:8]}") as update:

                    def show(status: RunPublic) -> None:
                        p = status.progress
                        update(total=p.total, completed=p.done or 0, info=p.message or status.state)

                    run = runs.wait_for_run(svc, principal, run_id, timeout=wait, on_progress=show)
    console.print_json(run.model_dump_json())
    if run.state in ("failed", "canceled", "timed_out"):
        raise typer.Exit(1)


@app.command("cancel")
def runs_cancel(run_id: Annotated[str, typer.Argument(help="Run id")]) -> None:
    """Stop a queued or running run; prints it once it has stopped."""
    from servicetsunami.services.runs import service as runs
    from servicetsunami.services.runs.model import RunPublic

    with remote() as server:
        if server is not None:
            run = RunPublic.model_validate(server.call("POST", f"/runs/{run_id}/cancel"))
    if server is None:
        with open_services() as svc:
            run = runs.cancel_run(svc, key_principal(svc), run_id)
    console.print(f"{run.run_id}: {run.state}")
