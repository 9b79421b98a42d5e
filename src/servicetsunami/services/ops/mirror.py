"""Mirror replays as runs: the outbox of the hybrid mode (:mod:`servicetsunami.engines.outbox`) is
replayed by runs of kind ``mirror_replay``, owned by the service, one at a time across every worker.

Every worker's ticker queues a replay when a job is due and none is queued or running (the run's
``dedupe_key`` makes a second one impossible); the run replays every due job and records its report
as the run's result. A replay whose worker died is safe to run again (each commit is applied at most
once), so it goes back to the queue.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from servicetsunami.engines.outbox import Outbox
from servicetsunami.errors import InvalidInput
from servicetsunami.services.runs import service as runs
from servicetsunami.services.runs.context import RunContext
from servicetsunami.services.runs.kinds import RunKind, register
from servicetsunami.services.runs.model import RunPublic

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

KIND = "mirror_replay"


def _replay(svc: Services, ctx: RunContext) -> dict[str, Any]:
    outbox = _outbox(svc)
    report = outbox.replay_due()
    return asdict(report)


def _tick(svc: Services) -> None:
    if svc.mirror is not None and svc.mirror.has_due():
        queue_replay(svc)


def queue_replay(svc: Services) -> str | None:
    """Queue a replay of the due jobs, unless one is already queued or running (then None)."""
    _outbox(svc)
    return runs.submit_service_run(svc, KIND, params={}, dedupe_key=KIND)


def retry_failed(svc: Services, *, wait_seconds: float = 300.0) -> tuple[int, RunPublic | None]:
    """Put failed jobs back in the queue and replay them now; returns how many, and the replay run
    (None when another replay was already under way: it takes them too)."""
    requeued = _outbox(svc).retry_failed()
    run_id = queue_replay(svc)
    if run_id is None:
        return requeued, None
    return requeued, runs.wait_for_run(svc, None, run_id, timeout=wait_seconds)


def summary(svc: Services) -> dict[str, int]:
    """How many outbox jobs are pending, synced and failed."""
    return _outbox(svc).summary()


def _outbox(svc: Services) -> Outbox:
    if svc.mirror is None:
        raise InvalidInput("no mirror is configured (set TSUNAMI_MIRROR=databricks with the local engine)")
    return svc.mirror


register(
    RunKind(
        KIND,
        _replay,
        requeue_when_lost=True,
        max_parallel=lambda settings: 1,
        ticker=_tick,
        ticker_seconds=lambda settings: settings.mirror_worker.poll_seconds,
    )
)
