"""How a claimed run is executed: its kind's handler is called with a :class:`RunContext`, and the
way it ended (result, error code, canceled, timed out) is recorded once."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from servicetsunami import metrics
from servicetsunami.errors import Cancelled, TsunamiError
from servicetsunami.services.runs.context import RunContext
from servicetsunami.services.runs.kinds import RunKind, registered
from servicetsunami.store.repositories import runs as runs_repo
from servicetsunami.store.repositories import tenants as tenants_repo
from servicetsunami.tenancy import Principal, principal_for

if TYPE_CHECKING:
    from servicetsunami.runs.base import ClaimedRun
    from servicetsunami.services.container import Services

logger = logging.getLogger(__name__)


def execute(svc: Services, claimed: ClaimedRun, /) -> None:
    started = time.perf_counter()
    try:
        _execute(svc, claimed)
    finally:
        state = _ENDED.pop(claimed.id, None)
        if state is not None:
            metrics.RUNS_FINISHED.labels(claimed.kind, state).inc()
            metrics.RUN_DURATION.labels(claimed.kind, state).observe(time.perf_counter() - started)


# run id -> the state its execution ended it in (read back by execute() for the metrics)
_ENDED: dict[str, str] = {}


class _Written:
    """What the ends recorded here wrote to the runs someone in this process follows (a job run's
    coordinator follows the task runs it creates, and takes their ends from here rather than from the
    store): run id -> None while followed, then the values its end wrote, until taken. Bounded,
    oldest first, for followers that stop taking (a coordinator that ended or moved elsewhere)."""

    MAX = 4096

    def __init__(self) -> None:
        self._runs: OrderedDict[str, dict[str, Any] | None] = OrderedDict()
        self._lock = threading.Lock()

    def follow(self, run_ids: list[str]) -> None:
        with self._lock:
            for run_id in run_ids:
                self._runs[run_id] = None
            while len(self._runs) > self.MAX:
                self._runs.popitem(last=False)

    def put(self, run_id: str, values: dict[str, Any]) -> None:
        with self._lock:
            if run_id in self._runs:
                self._runs[run_id] = values

    def take(self, run_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._runs.pop(run_id, None)


_WRITTEN = _Written()


def follow_ends(run_ids: list[str], /) -> None:
    """Keep what the ends of ``run_ids`` write, when this process records them, for :func:`take_end`."""
    _WRITTEN.follow(run_ids)


def take_end(run_id: str, /) -> dict[str, Any] | None:
    """The values the end of a followed ``run_id`` wrote to its row, once, if this process recorded
    it (committed: the store holds the same); None otherwise. Either way the run is no longer followed."""
    return _WRITTEN.take(run_id)


def _execute(svc: Services, claimed: ClaimedRun, /) -> None:
    kind = registered().get(claimed.kind)
    if kind is None:
        _end(svc, claimed, "failed", error=f"no worker here runs {claimed.kind!r} runs", error_code="unknown_kind")
        return
    try:
        principal = _principal(svc, claimed)
    except TsunamiError as exc:
        _end(svc, claimed, "failed", error=exc.message, error_code=exc.code)
        return
    ctx = RunContext(svc, claimed, principal)
    try:
        result = kind.handler(svc, ctx)
    except TsunamiError as exc:
        if claimed.cancelled or isinstance(exc, Cancelled):
            _stopped(svc, claimed, kind, ctx, exc)
        else:
            _end(svc, claimed, "failed", error=exc.message, error_code=exc.code, progress=ctx.last_progress)
        return
    except Exception as exc:
        logger.exception("run %s (%s) failed", claimed.id, claimed.kind)
        error = f"internal error ({type(exc).__name__}); see the service log"
        _end(svc, claimed, "failed", error=error, error_code="internal_error", progress=ctx.last_progress)
        return
    _end(svc, claimed, "succeeded", result=result or {}, progress=ctx.last_progress)


def _stopped(svc: Services, claimed: ClaimedRun, kind: RunKind, ctx: RunContext, exc: TsunamiError) -> None:
    reason = claimed.cancel_reason
    if reason == "timed_out":
        limit = f"{claimed.timeout_seconds:g} s" if claimed.timeout_seconds is not None else "its time limit"
        error = f"the run took longer than {limit} and was stopped"
        _end(svc, claimed, "timed_out", error=error, error_code="timed_out", progress=ctx.last_progress)
    elif reason == "shutdown" and kind.requeue_when_lost:
        with svc.store.session() as session:
            runs_repo.requeue(session, claimed.id, worker=svc.launcher.worker_id)
        svc.launcher.notify(claimed.id)
    elif reason == "shutdown":
        error = "the service stopped while the run was going; start it again"
        _end(svc, claimed, "canceled", error=error, error_code="cancelled", progress=ctx.last_progress)
    else:
        _end(svc, claimed, "canceled", error=exc.message, error_code="cancelled", progress=ctx.last_progress)


def _end(
    svc: Services,
    claimed: ClaimedRun,
    state: str,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    error_code: str | None = None,
    progress: dict[str, Any] | None = None,
) -> None:
    with svc.store.session(write_lock=True) as session:  # it writes: queued with the process's other writers
        ended = runs_repo.finish(
            session,
            claimed.id,
            state=state,
            result=result,
            error=error,
            error_code=error_code,
            progress=progress or None,
            worker=svc.launcher.worker_id,
        )
    if ended is not None:
        _ENDED[claimed.id] = state
        _WRITTEN.put(claimed.id, ended)
    else:
        logger.info("run %s had already ended elsewhere", claimed.id)
    svc.launcher.notify(claimed.id)


def _principal(svc: Services, claimed: ClaimedRun) -> Principal | None:
    if claimed.tenant_id is None:
        return None
    slug = claimed.tenant_slug
    if slug is None:
        with svc.store.session() as session:
            slug = tenants_repo.get_tenant(session, claimed.tenant_id).slug
    return principal_for(
        tenant_id=claimed.tenant_id,
        tenant_slug=slug,
        subject=claimed.subject,
        role=claimed.role or "analyst",
        catalog_prefix=svc.settings.catalog_prefix,
    )
