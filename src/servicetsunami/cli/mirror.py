"""``tsunami mirror``: the outbox of local writes copied to the mirror engine (``TSUNAMI_MIRROR``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from servicetsunami.cli.common import console, open_services
from servicetsunami.errors import InvalidInput

if TYPE_CHECKING:
    from servicetsunami.services.container import Services
    from servicetsunami.services.ops.mirror import MirrorService

app = typer.Typer(help="The outbox of writes copied to the mirror engine (TSUNAMI_MIRROR).", no_args_is_help=True)


def _configured_mirror(svc: Services) -> MirrorService:
    if svc.mirror is None:
        raise InvalidInput("no mirror is configured; set TSUNAMI_MIRROR=databricks")
    return svc.mirror


@app.command("status")
def mirror_status() -> None:
    """How many mirror jobs are pending, synced and failed."""
    with open_services() as svc:
        counts = _configured_mirror(svc).summary()
    console.print(", ".join(f"{k}: {v}" for k, v in counts.items()))


@app.command("retry")
def mirror_retry() -> None:
    """Put failed mirror jobs back in the queue and replay every due job now."""
    with open_services() as svc:
        mirror = _configured_mirror(svc)
        requeued = mirror.retry_failed()
        report = mirror.replay_due()
    console.print(
        f"requeued {requeued} failed job(s); synced {report.synced}, retrying {report.retrying}, failed {report.failed}"
    )
    if report.failed or report.retrying:
        raise typer.Exit(1)
