"""Runs: everything that takes time (syncs, mirror replays, ...), followed and stopped in one place.

``GET /runs/{id}`` is how a client polls whatever a long request handed back; ``?wait_seconds=``
holds the answer until the run ends or that time passes (long polling), bounded by the server.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from servicetsunami.api.deps import PageDep, PrincipalDep, ServicesDep
from servicetsunami.api.pagination import Page, cursor_key, page_of, timestamp
from servicetsunami.api.schemas.common import COMMON_ERRORS
from servicetsunami.services.runs import service as runs
from servicetsunami.services.runs.model import RunPublic

router = APIRouter(prefix="/runs", tags=["runs"])

MAX_WAIT_SECONDS = 60.0


@router.get("", operation_id="list_runs", response_model=Page[RunPublic], responses=COMMON_ERRORS)
async def list_runs(
    services: ServicesDep,
    principal: PrincipalDep,
    page: PageDep,
    kind: Annotated[str | None, Query(max_length=64, description="Only runs of this kind (sync, ...)")] = None,
    state: Annotated[str | None, Query(max_length=16, description="Only runs in this state")] = None,
) -> Page[RunPublic]:
    """Your tenant's runs, newest first."""
    after = cursor_key(page.cursor, timestamp, str)
    found = await run_in_threadpool(
        lambda: runs.list_runs(services, principal, kind=kind, state=state, after=after, limit=page.limit)
    )
    return page_of(found, key=lambda r: (r.created_at.isoformat(), r.run_id), limit=page.limit)


@router.get("/{run_id}", operation_id="get_run", response_model=RunPublic, responses=COMMON_ERRORS)
async def get_run(
    run_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    wait_seconds: Annotated[
        float, Query(ge=0, le=MAX_WAIT_SECONDS, description="Answer once the run ends, or after this long")
    ] = 0,
) -> RunPublic:
    """State, progress, timings, result or error of a run."""
    if wait_seconds <= 0:
        return await run_in_threadpool(runs.get_run, services, principal, run_id)
    return await runs.await_run(services, principal, run_id, timeout=wait_seconds)


@router.post("/{run_id}/cancel", operation_id="cancel_run", response_model=RunPublic, responses=COMMON_ERRORS)
async def cancel_run(run_id: str, services: ServicesDep, principal: PrincipalDep) -> RunPublic:
    """Stop a queued or running run; answers once it has stopped (or after a bounded wait)."""
    return await run_in_threadpool(runs.cancel_run, services, principal, run_id)
