"""The public shape of a run, as every door shows it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from servicetsunami.store.models import Run


class RunProgress(BaseModel):
    done: float | None = Field(None, description="How much is done, in `unit`")
    total: float | None = Field(None, description="How much there is in all, when known")
    unit: str | None = Field(None, description="rows, bytes, tasks, cells, ...")
    message: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict, description="Facts of the run's kind (rows, bytes, ...)")


class RunPublic(BaseModel):
    run_id: str
    kind: str = Field(description="sync, mirror_replay, ...")
    state: str = Field(description="queued, running, succeeded, failed, canceled, timed_out or skipped")
    resource_id: str | None = Field(None, description="What the run is of: a sync id, a job id, ...")
    parent_id: str | None = Field(None, description="The run this one belongs to (a task run's job run)")
    attempts: int
    progress: RunProgress
    result: dict[str, Any] | None = None
    error_code: str | None = None
    error: str | None = None
    cancel_requested: bool = False
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None = None
    hint: str | None = None

    @property
    def finished(self) -> bool:
        return self.finished_at is not None


def run_public(run: Run) -> RunPublic:
    raw = dict(run.progress or {})
    progress = RunProgress(
        done=raw.pop("done", None),
        total=raw.pop("total", None),
        unit=raw.pop("unit", None),
        message=raw.pop("message", None),
        detail=raw,
    )
    began = run.started_at or run.created_at
    end = run.finished_at
    return RunPublic(
        run_id=run.id,
        kind=run.kind,
        state=run.state,
        resource_id=run.resource_id,
        parent_id=run.parent_id,
        attempts=run.attempts,
        progress=progress,
        result=run.result,
        error_code=run.error_code,
        error=run.error,
        cancel_requested=run.cancel_requested,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=end,
        duration_seconds=round((end - began).total_seconds(), 3) if end is not None else None,
    )
