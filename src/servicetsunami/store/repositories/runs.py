"""Runs in the system store: create, claim, beat, finish, cancel, sweep, list.

Every state change is a compare-and-set (``UPDATE ... WHERE state = <expected>``), so two workers,
two processes or a worker and a sweep racing on one run cannot both win. The winner of a change
that starts or ends a run also queues its webhook deliveries, in the same transaction
(:func:`servicetsunami.store.repositories.webhooks.enqueue_run_event`). Claiming reads the oldest
queued run with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite has one writer, and the claim runs in
a ``BEGIN IMMEDIATE`` session (``store.session(write_lock=True)``).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, Update, and_, func, insert, null, select, update
from sqlalchemy.orm import Session

from servicetsunami.errors import InvalidInput, NotFound
from servicetsunami.store.models import FINISHED_RUN_STATES, RUN_STATES, Run, new_id, utcnow
from servicetsunami.store.repositories import webhooks as webhooks_repo
from servicetsunami.store.repositories._keyset import bytewise, keyset
from servicetsunami.store.repositories._statements import param

ACTIVE_STATES = ("queued", "running")


# The statements every run makes (a task of a job run: counted, created, ended) are built once, on
# the table (Core), with parameters: building one, or going through the ORM's execution, costs more
# than running it on SQLite (SQLAlchemy's compiled cache keeps the SQL).
_RUNS = cast(Table, Run.__table__)


_FINISH_VALUES = ("state", "result", "error", "error_code", "finished_at", "updated_at", "dedupe_key")


def _finish_statement(*, by_worker: bool, with_progress: bool) -> Update:
    c = _RUNS.c
    query = update(_RUNS).where(c.id == param(c.id), c.state.in_(ACTIVE_STATES))
    if by_worker:
        query = query.where(c.worker == param(c.worker))
    names = (*_FINISH_VALUES, "progress") if with_progress else _FINISH_VALUES
    return query.values({name: param(c[name]) for name in names})


_FINISH = {
    (by_worker, with_progress): _finish_statement(by_worker=by_worker, with_progress=with_progress)
    for by_worker in (False, True)
    for with_progress in (False, True)
}
_COUNT_ACTIVE = select(func.count()).where(
    _RUNS.c.tenant_id == param(_RUNS.c.tenant_id),
    _RUNS.c.kind == param(_RUNS.c.kind),
    _RUNS.c.state.in_(ACTIVE_STATES),
)
_COUNT_ACTIVE_OF = _COUNT_ACTIVE.where(_RUNS.c.resource_id == param(_RUNS.c.resource_id))
_ACTIVE_CHILDREN = select(_RUNS.c.id, _RUNS.c.state).where(
    _RUNS.c.parent_id == param(_RUNS.c.parent_id), _RUNS.c.state.in_(ACTIVE_STATES)
)
_COUNT_CHILDREN = select(func.count()).where(_RUNS.c.parent_id == param(_RUNS.c.parent_id))


def create_run(
    session: Session,
    *,
    tenant_id: str | None,
    kind: str,
    subject: str,
    role: str | None,
    params: dict[str, Any],
    resource_id: str | None = None,
    parent_id: str | None = None,
    dedupe_key: str | None = None,
    max_attempts: int = 1,
    timeout_seconds: float | None = None,
) -> Run:
    """A queued run (:func:`create_runs` also creates runs already claimed by a worker)."""
    run = Run(
        tenant_id=tenant_id,
        kind=kind,
        subject=subject,
        role=role,
        params=params,
        resource_id=resource_id,
        parent_id=parent_id,
        dedupe_key=dedupe_key,
        state="queued",
        attempts=0,
        max_attempts=max_attempts,
        timeout_seconds=timeout_seconds,
        cancel_requested=False,
        progress={},
    )
    session.add(run)
    session.flush()
    return run


def create_runs(
    session: Session, rows: list[dict[str, Any]], /, *, worker: str | None = None, claimed: int = 0
) -> list[dict[str, Any]]:
    """Create many runs in one statement (each row: :func:`create_run`'s keywords, the same keys in
    every row). The first ``claimed`` are already claimed by ``worker`` (running, first attempt,
    beating): a coordinator that executes them itself skips the queue, and a sweep ends them like any
    other run if that worker dies; the others are queued. Returns what was inserted, in order (see
    :func:`detached`; to read, never to change). For batches where a round trip per run is what
    costs: the schedule ticker's ticks, a coordinator's task runs."""
    if not rows:
        return []
    now = utcnow()
    claimed = claimed if worker is not None else 0
    made = []
    for i, row in enumerate(rows):
        mine = i < claimed
        created = utcnow()  # each its own, as the column's default would give: claims go by created_at
        made.append(
            {
                **row,
                "id": new_id(),
                "state": "running" if mine else "queued",
                "attempts": 1 if mine else 0,
                "worker": worker if mine else None,
                "started_at": now if mine else None,
                "heartbeat_at": now if mine else None,
                "cancel_requested": False,
                "progress": {},
                "created_at": created,
                "updated_at": created,
            }
        )
    session.execute(insert(_RUNS), [{**row, "metadata": {}} for row in made])  # Core: one executemany
    by_tenant: dict[str | None, list[str]] = {}
    for row in made[:claimed]:  # they start as they are created
        by_tenant.setdefault(row["tenant_id"], []).append(row["id"])
    for tenant_id, run_ids in by_tenant.items():
        webhooks_repo.enqueue_run_events(session, run_ids, tenant_id=tenant_id)
    return made


def detached(rows: list[dict[str, Any]], /) -> list[Run]:
    """Runs as :func:`create_runs` inserted them, as rows no session holds (to read, never to
    change). Built outside the transaction: the ORM's bookkeeping is not worth holding a lock for."""
    return [Run(**row, meta={}) for row in rows]


def get_run(session: Session, run_id: str, /, *, tenant_id: str | None) -> Run:
    """The run, if it belongs to ``tenant_id`` (``None``: the service itself, which sees every run)."""
    run = session.get(Run, run_id)
    if run is None or (tenant_id is not None and run.tenant_id != tenant_id):
        raise NotFound(f"run {run_id} does not exist")
    return run


def run_state(session: Session, run_id: str, /, *, tenant_id: str | None) -> str:
    """:func:`get_run`'s state alone (a waiter's light read: the row's JSON is not decoded)."""
    query = select(Run.state).where(Run.id == run_id)
    if tenant_id is not None:
        query = query.where(Run.tenant_id == tenant_id)
    state = session.scalar(query)
    if state is None:
        raise NotFound(f"run {run_id} does not exist")
    return str(state)


def list_runs(
    session: Session,
    *,
    tenant_id: str | None,
    kind: str | None = None,
    state: str | None = None,
    resource_id: str | None = None,
    parent_id: str | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int | None = None,
) -> list[Run]:
    """Newest first; ``after`` is the (created_at, id) of the last run of the previous page, and a
    page holds up to ``limit + 1`` runs (the extra one says that another page follows)."""
    query = select(Run)
    if tenant_id is not None:
        query = query.where(Run.tenant_id == tenant_id)
    if kind is not None:
        query = query.where(Run.kind == kind)
    if state is not None:
        if state not in RUN_STATES:
            raise InvalidInput(f"state must be one of {', '.join(RUN_STATES)}, not {state!r}")
        query = query.where(Run.state == state)
    if resource_id is not None:
        query = query.where(Run.resource_id == resource_id)
    if parent_id is not None:
        query = query.where(Run.parent_id == parent_id)
    query = keyset(query, (Run.created_at, bytewise(Run.id)), after=after, limit=limit, descending=True)
    return list(session.scalars(query))


def has_queued(session: Session, *, kinds: Collection[str]) -> bool:
    """Whether a run of ``kinds`` waits (a plain read: idle workers ask this before they lock)."""
    found = session.scalar(select(Run.id).where(Run.state == "queued", Run.kind.in_(list(kinds))).limit(1))
    return found is not None


def claim_next(session: Session, *, kinds: Collection[str], worker: str) -> Run | None:
    """Take the oldest queued run of ``kinds`` for ``worker``: running, one more attempt, beating."""
    candidate = session.scalars(
        select(Run)
        .where(Run.state == "queued", Run.kind.in_(list(kinds)))
        .order_by(Run.created_at, Run.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()
    if candidate is None:
        return None
    now = utcnow()
    taken = session.execute(
        update(Run)
        .where(Run.id == candidate.id, Run.state == "queued")
        .values(
            state="running",
            worker=worker,
            attempts=Run.attempts + 1,
            started_at=now,
            heartbeat_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if _rowcount(taken) != 1:
        return None
    session.refresh(candidate)
    webhooks_repo.enqueue_run_event(session, candidate.id)
    return candidate


def beat(session: Session, run_ids: Collection[str], /, *, worker: str) -> dict[str, bool]:
    """Mark ``worker``'s running runs alive; answers, for each still running, whether its cancel was
    asked (runs missing from the answer were ended by someone else, a sweep or a cancel)."""
    if not run_ids:
        return {}
    now = utcnow()
    session.execute(
        update(Run)
        .where(Run.id.in_(list(run_ids)), Run.worker == worker, Run.state == "running")
        .values(heartbeat_at=now)
        .execution_options(synchronize_session=False)
    )
    rows = session.execute(
        select(Run.id, Run.cancel_requested).where(
            Run.id.in_(list(run_ids)), Run.worker == worker, Run.state == "running"
        )
    )
    return {run_id: bool(asked) for run_id, asked in rows}


def set_progress(session: Session, run_id: str, /, *, progress: dict[str, Any], worker: str | None = None) -> bool:
    """Record progress of a running run; False when the run is no longer running (here)."""
    query = update(Run).where(Run.id == run_id, Run.state == "running")
    if worker is not None:
        query = query.where(Run.worker == worker)
    now = utcnow()
    done = session.execute(
        query.values(progress=progress, heartbeat_at=now, updated_at=now).execution_options(synchronize_session=False)
    )
    return _rowcount(done) == 1


def finish(
    session: Session,
    run_id: str,
    /,
    *,
    state: str,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    error_code: str | None = None,
    progress: dict[str, Any] | None = None,
    worker: str | None = None,
) -> dict[str, Any] | None:
    """End an active run; the values written (attribute -> value), or None when it had already
    ended (the first end wins)."""
    if state not in FINISHED_RUN_STATES:
        raise InvalidInput(f"a run ends as one of {', '.join(sorted(FINISHED_RUN_STATES))}, not {state!r}")
    now = utcnow()
    values: dict[str, Any] = {
        "state": state,
        "result": result,
        "error": error[:4000] if error else None,
        "error_code": error_code,
        "finished_at": now,
        "updated_at": now,
        "dedupe_key": None,
    }
    if progress is not None:
        values["progress"] = progress
    query = _FINISH[(worker is not None, progress is not None)]
    params = {"p_id": run_id, **{f"p_{name}": value for name, value in values.items()}}
    if worker is not None:
        params["p_worker"] = worker
    done = session.execute(query, params)
    if _rowcount(done) != 1:
        return None
    webhooks_repo.enqueue_run_event(session, run_id)
    return values


def requeue(session: Session, run_id: str, /, *, worker: str) -> bool:
    """Give a running run back to the queue (its worker is stopping and the kind is safe to rerun)."""
    done = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.state == "running", Run.worker == worker)
        .values(state="queued", worker=None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return _rowcount(done) == 1


def request_cancel(session: Session, run_id: str, /, *, tenant_id: str | None) -> Run:
    """Ask a run to stop: a queued one is canceled at once, a running one is flagged for its worker
    (which stops it at its next beat). A finished run is returned unchanged."""
    run = get_run(session, run_id, tenant_id=tenant_id)
    if run.state == "queued":
        finish(session, run_id, state="canceled", error="canceled before it started", error_code="cancelled")
    elif run.state == "running":
        session.execute(
            update(Run)
            .where(Run.id == run_id, Run.state == "running")
            .values(cancel_requested=True, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    session.refresh(run)
    return run


def has_stale(session: Session, *, stale_before: datetime) -> bool:
    """Whether a running run stopped beating before ``stale_before`` (a plain read, before a sweep)."""
    found = session.scalar(select(Run.id).where(Run.state == "running", Run.heartbeat_at < stale_before).limit(1))
    return found is not None


def sweep(session: Session, *, stale_before: datetime, requeue_kinds: Collection[str]) -> list[tuple[str, str]]:
    """End or re-queue running runs whose worker stopped beating before ``stale_before``: a run of a
    kind that is safe to run again, with attempts left, goes back to the queue; any other fails with
    ``worker_lost``. Returns (run id, new state) of each."""
    stale = list(
        session.execute(
            select(Run.id, Run.kind, Run.attempts, Run.max_attempts, Run.cancel_requested).where(
                Run.state == "running", Run.heartbeat_at < stale_before
            )
        )
    )
    changed: list[tuple[str, str]] = []
    for run_id, kind, attempts, max_attempts, cancel_asked in stale:
        guard = and_(Run.id == run_id, Run.state == "running", Run.heartbeat_at < stale_before)
        if kind in requeue_kinds and attempts < max_attempts and not cancel_asked:
            done = session.execute(
                update(Run)
                .where(guard)
                .values(state="queued", worker=None, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            new_state = "queued"
        else:
            done = session.execute(
                update(Run)
                .where(guard)
                .values(
                    state="canceled" if cancel_asked else "failed",
                    error_code="cancelled" if cancel_asked else "worker_lost",
                    error=None
                    if cancel_asked
                    else "the process running it stopped (killed or crashed) before it finished",
                    finished_at=utcnow(),
                    updated_at=utcnow(),
                    dedupe_key=None,
                )
                .execution_options(synchronize_session=False)
            )
            new_state = "canceled" if cancel_asked else "failed"
        if _rowcount(done) == 1:
            changed.append((run_id, new_state))
            if new_state != "queued":
                webhooks_repo.enqueue_run_event(session, run_id)
    return changed


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def lock_slots(session: Session, /, *, tenant_id: str, kind: str) -> None:
    """Serialise, until this transaction ends, every transaction that counts and then queues the
    tenant's runs of ``kind`` (a limit checked by :func:`count_active` then holds across processes).

    PostgreSQL: a transaction-scoped advisory lock on the pair; SQLite: the transaction begins now,
    and a session opened with ``write_lock`` thereby holds the database's one write lock."""
    connection = session.connection()  # begins the transaction (BEGIN IMMEDIATE with write_lock on SQLite)
    if connection.dialect.name != "postgresql":
        return
    session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(f"runs:{tenant_id}:{kind}", 0))))


def count_active(session: Session, /, *, tenant_id: str, kind: str, resource_id: str | None = None) -> int:
    """How many runs of ``kind`` of the tenant (of ``resource_id``) are queued or running."""
    if resource_id is None:
        return int(session.scalar(_COUNT_ACTIVE, {"p_tenant_id": tenant_id, "p_kind": kind}) or 0)
    params = {"p_tenant_id": tenant_id, "p_kind": kind, "p_resource_id": resource_id}
    return int(session.scalar(_COUNT_ACTIVE_OF, params) or 0)


def count_active_by_resource(session: Session, resource_ids: Collection[str], /, *, kind: str) -> dict[str, int]:
    """:func:`count_active` for many resources at once: resource id -> runs of ``kind`` queued or
    running (resources with none are left out)."""
    if not resource_ids:
        return {}
    rows = session.execute(
        select(Run.resource_id, func.count())
        .where(Run.kind == kind, Run.state.in_(ACTIVE_STATES), Run.resource_id.in_(list(resource_ids)))
        .group_by(Run.resource_id)
    )
    return {resource_id: int(n) for resource_id, n in rows if resource_id is not None}


def reopen(session: Session, run_id: str, /, *, params: dict[str, Any], max_attempts: int) -> bool:
    """Queue a finished run again with new ``params`` (a job run's repair: the same run, one more
    attempt); False when it is not finished (someone else reopened it first)."""
    done = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.state.in_(list(FINISHED_RUN_STATES)))
        .values(
            state="queued",
            params=params,
            max_attempts=max_attempts,
            result=None,
            error=None,
            error_code=None,
            worker=None,
            cancel_requested=False,
            finished_at=None,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    return _rowcount(done) == 1


def child_states(session: Session, parent_id: str, /) -> list[tuple[str, str]]:
    """(id, state) of every run whose parent is ``parent_id`` (a light read for coordinators)."""
    return [
        (run_id, state)
        for run_id, state in session.execute(select(Run.id, Run.state).where(Run.parent_id == parent_id))
    ]


def active_children(session: Session, parent_id: str, /) -> tuple[dict[str, str], int]:
    """(id -> state of the queued and running runs whose parent is ``parent_id``, how many runs it has
    in all): what changed since a coordinator's last look, in two index reads."""
    params = {"p_parent_id": parent_id}
    active = {run_id: state for run_id, state in session.execute(_ACTIVE_CHILDREN, params)}
    total = int(session.scalar(_COUNT_CHILDREN, params) or 0)
    return active, total


def get_runs(session: Session, run_ids: Collection[str], /) -> list[Run]:
    """The runs of ``run_ids`` that exist (no tenant check: for the service's own coordinators)."""
    return list(session.scalars(select(Run).where(Run.id.in_(list(run_ids)))))


def clear_results(session: Session, /, *, kind: str, finished_before: datetime) -> int:
    """Forget the results of the runs of ``kind`` that succeeded before ``finished_before`` (their
    record stays); how many were cleared."""
    result = session.execute(
        update(Run)
        .where(Run.kind == kind, Run.state == "succeeded", Run.finished_at < finished_before, Run.result.is_not(null()))
        .values(result=null())
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result)


def counts_by_kind_and_state(
    session: Session, /, *, states: Collection[str] | None = None, tenant_id: str | None = None
) -> dict[tuple[str, str], int]:
    """``{(kind, state): runs}`` of every tenant (or one), limited to ``states`` when given."""
    query = select(Run.kind, Run.state, func.count()).group_by(Run.kind, Run.state)
    if states is not None:
        query = query.where(Run.state.in_(list(states)))
    if tenant_id is not None:
        query = query.where(Run.tenant_id == tenant_id)
    return {(kind, state): int(n) for kind, state, n in session.execute(query)}


def finished_since(session: Session, /, *, tenant_id: str, since: datetime) -> list[tuple[str, str, float]]:
    """``(kind, state, seconds from start to finish)`` of the tenant's runs that finished since ``since``."""
    query = select(Run.kind, Run.state, Run.started_at, Run.finished_at).where(
        Run.tenant_id == tenant_id, Run.finished_at >= since
    )
    return [
        (kind, state, (finished - started).total_seconds() if started is not None and finished is not None else 0.0)
        for kind, state, started, finished in session.execute(query)
    ]


def daily_counts(session: Session, /, *, tenant_id: str, since: datetime) -> list[tuple[str, bool, int]]:
    """``(day as YYYY-MM-DD in UTC, is a sync, runs)`` of the tenant's runs created since ``since``;
    runs that belong to another (a job run's tasks) are counted in it, not on their own."""
    day = func.date(Run.created_at)
    is_sync = Run.kind == "sync"
    query = (
        select(day, is_sync, func.count())
        .where(Run.tenant_id == tenant_id, Run.created_at >= since, Run.parent_id.is_(None))
        .group_by(day, is_sync)
    )
    return [(str(d), bool(sync), int(n)) for d, sync, n in session.execute(query)]
