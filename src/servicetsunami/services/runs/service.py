"""Runs as the doors use them: submit, get, list, cancel, and one way to wait with progress.

Every door waits the same way: MCP tools turn the progress into progress notifications
(:func:`await_run`), REST answers with the run as it stands after a bounded wait and is polled at
``GET /api/v1/runs/{id}``, and the CLI draws a progress bar (:func:`wait_for_run`). A wait is always
bounded: a run that outlives it keeps going and its id is returned with a hint.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from servicetsunami.errors import Conflict
from servicetsunami.runs.base import Ticker
from servicetsunami.services.runs.execute import execute
from servicetsunami.services.runs.kinds import registered
from servicetsunami.services.runs.model import RunPublic, run_public
from servicetsunami.store.models import FINISHED_RUN_STATES
from servicetsunami.store.repositories import runs as runs_repo
from servicetsunami.tenancy import Principal, Scope

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

SERVICE_SUBJECT = "service"


def ensure_worker(svc: Services) -> None:
    """Start this process's launcher (claiming every registered kind), once."""
    if svc.launcher.started:
        return
    kinds = registered()
    tickers = [
        Ticker(k.ticker_seconds(svc.settings) if k.ticker_seconds else svc.settings.runs.poll_seconds, partial(t, svc))
        for k in kinds.values()
        if (t := k.ticker) is not None
    ]
    policies = {name: k.policy(svc.settings) for name, k in kinds.items()}
    svc.launcher.start(partial(execute, svc), kinds=policies, tickers=tickers)


def submit(
    svc: Services,
    principal: Principal,
    kind: str,
    /,
    *,
    params: dict[str, Any],
    resource_id: str | None = None,
    parent_id: str | None = None,
    timeout_seconds: float | None = None,
    max_attempts: int = 1,
) -> str:
    """Queue a run owned by ``principal``; this process's launcher is woken to claim it."""
    with svc.store.session() as session:
        run = runs_repo.create_run(
            session,
            tenant_id=principal.tenant_id,
            kind=kind,
            subject=principal.subject,
            role=principal.run_role.value,
            params=params,
            resource_id=resource_id,
            parent_id=parent_id,
            timeout_seconds=timeout_seconds,
            max_attempts=max_attempts,
        )
        run_id = run.id
    ensure_worker(svc)
    svc.launcher.kick()
    return run_id


def submit_service_run(svc: Services, kind: str, /, *, params: dict[str, Any], dedupe_key: str) -> str | None:
    """Queue a run of the service itself (no tenant), unless one with ``dedupe_key`` is active."""
    try:
        with svc.store.session() as session:
            run = runs_repo.create_run(
                session,
                tenant_id=None,
                kind=kind,
                subject=SERVICE_SUBJECT,
                role=None,
                params=params,
                dedupe_key=dedupe_key,
                max_attempts=3,
            )
            run_id = run.id
    except Conflict:
        return None  # one is queued or running already
    ensure_worker(svc)
    svc.launcher.kick()
    return run_id


def get_run(svc: Services, principal: Principal | None, run_id: str, /) -> RunPublic:
    """A run of the caller's tenant (``principal`` None: the service, which sees all)."""
    if principal is not None:
        principal.require(Scope.READ)
    with svc.store.session() as session:
        public = run_public(runs_repo.get_run(session, run_id, tenant_id=_tenant(principal)))
    local = svc.launcher.local_run(run_id)
    if local is not None and local.live is not None and not public.finished:
        public.progress.detail.update(local.live())
    return public


def list_runs(
    svc: Services,
    principal: Principal,
    /,
    *,
    kind: str | None = None,
    state: str | None = None,
    resource_id: str | None = None,
    parent_id: str | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int | None = None,
) -> list[RunPublic]:
    """The caller's runs, newest first; with ``after`` and ``limit``, one page of them plus the next
    run if there is one."""
    principal.require(Scope.READ)
    with svc.store.session() as session:
        return [
            run_public(run)
            for run in runs_repo.list_runs(
                session,
                tenant_id=principal.tenant_id,
                kind=kind,
                state=state,
                resource_id=resource_id,
                parent_id=parent_id,
                after=after,
                limit=limit,
            )
        ]


def cancel_run(svc: Services, principal: Principal, run_id: str, /, *, wait_seconds: float = 10.0) -> RunPublic:
    """Ask a run to stop and wait (bounded) until it has; a finished run is a :class:`Conflict`."""
    principal.require(Scope.WRITE)
    with svc.store.session(write_lock=True) as session:  # read, then write: SQLite's lock from the start
        run = runs_repo.get_run(session, run_id, tenant_id=principal.tenant_id)
        if run.finished:
            raise Conflict(f"run {run_id} already ended ({run.state})")
        runs_repo.request_cancel(session, run_id, tenant_id=principal.tenant_id)
    local = svc.launcher.local_run(run_id)
    if local is not None:  # here: stop it now rather than at the next beat
        local.request_cancel("canceled")
    return wait_for_run(svc, principal, run_id, timeout=wait_seconds)


def wait_for_run(
    svc: Services,
    principal: Principal | None,
    run_id: str,
    /,
    *,
    timeout: float,
    on_progress: Callable[[RunPublic], None] | None = None,
    poll_seconds: float = 0.5,
) -> RunPublic:
    """Wait until the run ends or ``timeout`` passes; ``on_progress`` sees each state in between.
    Wakes on each change of the run made in this process, and polls the store for the others' runs.
    Without ``on_progress``, only the run's state is read until it ends (a job run's row holds its
    whole definition and the states of all its tasks)."""
    if principal is not None:
        principal.require(Scope.READ)
    deadline = time.monotonic() + max(timeout, 0.0)
    while True:
        seen = svc.launcher.changes()  # a change from here on ends the wait below at once
        status = get_run(svc, principal, run_id) if on_progress is not None else None
        ended = status.finished if status is not None else _ended(svc, principal, run_id)
        remaining = deadline - time.monotonic()
        if ended or remaining <= 0:
            if status is None:
                status = get_run(svc, principal, run_id)
            if not status.finished:
                status.hint = f"still {status.state}; poll get_run('{run_id}') or cancel_run('{run_id}')"
            return status
        if on_progress is not None and status is not None:
            on_progress(status)
        svc.launcher.wait_change(min(poll_seconds, remaining), after=seen, run_id=run_id)


def _ended(svc: Services, principal: Principal | None, run_id: str, /) -> bool:
    """Whether the run ended, from its state alone (its row's JSON is not decoded)."""
    with svc.store.session() as session:
        return runs_repo.run_state(session, run_id, tenant_id=_tenant(principal)) in FINISHED_RUN_STATES


async def await_run(
    svc: Services,
    principal: Principal,
    run_id: str,
    /,
    *,
    timeout: float,
    on_progress: Callable[[RunPublic], Awaitable[None]] | None = None,
    poll_seconds: float = 0.5,
) -> RunPublic:
    """:func:`wait_for_run` for async doors: the waiting happens in a worker thread, the progress
    callback on the event loop (MCP progress notifications)."""
    deadline = time.monotonic() + max(timeout, 0.0)
    while True:
        slice_ = min(poll_seconds, max(0.0, deadline - time.monotonic()))
        status = await anyio.to_thread.run_sync(
            partial(wait_for_run, svc, principal, run_id, timeout=slice_, poll_seconds=slice_)
        )
        if status.finished or time.monotonic() >= deadline:
            return status
        if on_progress is not None:
            await on_progress(status)


def _tenant(principal: Principal | None) -> str | None:
    return principal.tenant_id if principal is not None else None
