"""``tsunami mirror``: the outbox of local writes copied to the mirror engine (``TSUNAMI_MIRROR``)."""

from __future__ import annotations

import typer

from servicetsunami.cli.common import console, open_services

app = typer.Typer(help="The outbox of writes copied to the mirror engine (TSUNAMI_MIRROR).", no_args_is_help=True)


@app.command("status")
def mirror_status() -> None:
    """How many mirror jobs are pending, synced and failed."""
    from servicetsunami.services.ops import mirror

    with open_services() as svc:
        counts = mirror.summary(svc)
    console.print(", ".join(f"{k}: {v}" for k, v in counts.items()))


@app.command("retry")
def mirror_retry() -> None:
    """Put failed mirror jobs back in the queue and replay every due job now (in a replay run)."""
    from servicetsunami.services.ops import mirror

    with open_services() as svc:
        requeued, run = mirror.retry_failed(svc)
    if run is None:
        console.print(f"requeued {requeued} failed job(s); a replay already under way takes them")
        return
    report = run.result or {}
    synced, retrying, failed = (int(report.get(k) or 0) for k in ("synced", "retrying", "failed"))
    console.print(
        f"requeued {requeued} failed job(s); synced {synced}, retrying {retrying}, failed {failed}"
        + (f" ({run.state}: {run.error})" if run.state != "succeeded" else "")
    )
    if failed or retrying or run.state != "succeeded":
        raise typer.Exit(1)
