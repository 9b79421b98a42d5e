"""What a run's handler sees: its parameters, its owner, progress reporting and cancellation."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from servicetsunami.errors import Cancelled, PermissionDenied
from servicetsunami.store.repositories import runs as runs_repo
from servicetsunami.tenancy import Principal

if TYPE_CHECKING:
    from servicetsunami.runs.base import ClaimedRun
    from servicetsunami.services.container import Services

# Progress is written to the store at most this often (the last report of a run is always written).
_PROGRESS_EVERY_SECONDS = 0.25


class RunContext:
    def __init__(self, svc: Services, claimed: ClaimedRun, principal: Principal | None) -> None:
        self._svc = svc
        self._claimed = claimed
        self._principal = principal
        self._progress: dict[str, Any] = {}
        self._written_at = 0.0
        self._held = False  # a report was held back by the rate limit and not written since

    @property
    def run_id(self) -> str:
        return self._claimed.id

    @property
    def params(self) -> dict[str, Any]:
        return self._claimed.params

    @property
    def attempt(self) -> int:
        return self._claimed.attempt

    @property
    def principal(self) -> Principal:
        """The caller who started the run, with the rights it had (service runs have none)."""
        if self._principal is None:
            raise PermissionDenied("this run belongs to the service, not to a tenant")
        return self._principal

    @property
    def cancelled(self) -> bool:
        return self._claimed.cancelled

    @property
    def timeout_seconds(self) -> float | None:
        """The run's time limit (the launcher stops it past this), if it has one."""
        return self._claimed.timeout_seconds

    @property
    def cancel_reason(self) -> str | None:
        """Why the run is being stopped: canceled, timed_out, shutdown (the service stops) or lost."""
        return self._claimed.cancel_reason

    def wait_cancelled(self, timeout: float, /) -> bool:
        """Wait (bounded) until the run is canceled or times out; True if it was."""
        return self._claimed.wait_cancelled(timeout)

    def raise_if_cancelled(self) -> None:
        if self._claimed.cancelled:
            raise Cancelled("the run was canceled" if self._claimed.cancel_reason != "timed_out" else "timed out")

    def on_cancel(self, callback: Callable[[], None], /) -> None:
        """Call ``callback`` (from another thread) when the run is canceled or times out."""
        self._claimed.on_cancel(callback)

    def set_live(self, live: Callable[[], dict[str, Any]], /) -> None:
        """Progress known in memory between reports, shown to callers in this process."""
        self._claimed.live = live

    def progress(
        self,
        *,
        done: float | None = None,
        total: float | None = None,
        unit: str | None = None,
        message: str | None = None,
        force: bool = False,
        **detail: Any,
    ) -> bool:
        """Report progress (merged into what was reported before). Returns False when the run is no
        longer running here (it was ended elsewhere): the handler should stop."""
        for key, value in (("done", done), ("total", total), ("unit", unit), ("message", message)):
            if value is not None:
                self._progress[key] = value
        self._progress.update(detail)
        now = time.monotonic()
        if not force and now - self._written_at < _PROGRESS_EVERY_SECONDS:
            self._held = True
            return True
        self._written_at, self._held = now, False
        with self._svc.store.session() as session:
            alive = runs_repo.set_progress(
                session, self.run_id, progress=dict(self._progress), worker=self._svc.launcher.worker_id
            )
        self._svc.launcher.notify(self.run_id)
        return alive

    @property
    def progress_held(self) -> float | None:
        """Seconds until progress held back by the rate limit may be written (report again then, if
        nothing else will); None when every report was written."""
        if not self._held:
            return None
        return max(0.0, self._written_at + _PROGRESS_EVERY_SECONDS - time.monotonic())

    @property
    def last_progress(self) -> dict[str, Any]:
        return dict(self._progress)
