"""The DAG runner on the run model: a ``job_run`` run starts ``task_run`` child runs as their
dependencies allow.

A job run's handler is the coordinator. Each round it takes its task runs as the store holds them (so
it can be resumed by another worker after its own died; what changed only through this process, a
task run it ran here ending, it knows without reading: see :class:`_Children`), works out each
task's state, and then:

- starts every task whose dependencies ended and whose ``run_if`` holds (``all_success``,
  ``all_done``, ``at_least_one_failed``), while the tenant has fewer than ``jobs.max_parallel_tasks``
  task runs queued or running; a task whose ``run_if`` does not hold is recorded as ``skipped``
  (``upstream_failed``, or ``excluded`` for ``at_least_one_failed`` when nothing failed);
- starts a failed task again as a new task run after ``min_retry_interval_seconds`` (doubled for each
  further retry) while it has retries left (a timed-out one only with ``retry_on_timeout``); a task of a
  kind that is exactly once (sync) whose worker died starts again without using a retry;
- ends when every task has ended: succeeded, or failed with :class:`JobRunFailed`.

Each task run has the task's ``timeout_seconds`` as its run timeout: the launcher stops it, and the
kinds pass the remaining time to the engine, which interrupts the statement. Canceling a job run
cancels its running task runs and records the tasks that had not started as ``canceled``. A repair
(:mod:`.job_runs`) queues the finished job run again with the tasks to run anew (``rerun``) and a
repair number: task runs of earlier repairs still count for the other tasks.
"""

from __future__ import annotations

import contextlib
import graphlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from servicetsunami.engines.base import stoppable
from servicetsunami.errors import InvalidInput, JobRunFailed, TaskKindUnavailable, TsunamiError
from servicetsunami.logs import redact
from servicetsunami.runs.base import ClaimedRun
from servicetsunami.services.pipelines import kinds
from servicetsunami.services.pipelines.spec import JobSpec, TaskSpec, has_templates, render
from servicetsunami.services.runs import execute
from servicetsunami.services.runs import service as runs
from servicetsunami.services.runs.kinds import RunKind, register
from servicetsunami.services.runs.stops import Stops
from servicetsunami.store.models import Run, utcnow
from servicetsunami.store.repositories import runs as runs_repo
from servicetsunami.tenancy import Principal

if TYPE_CHECKING:
    from servicetsunami.services.container import Services
    from servicetsunami.services.runs.context import RunContext
    from servicetsunami.settings import Settings

logger = logging.getLogger(__name__)

JOB_RUN = "job_run"
TASK_RUN = "task_run"
FAILED_STATES = frozenset({"failed", "timed_out", "canceled"})
TERMINAL_STATES = frozenset({"succeeded", "skipped", *FAILED_STATES})
# Failures that a new attempt cannot fix.
_NOT_RETRIED = frozenset({"task_kind_unavailable", "invalid_input", "invalid_job", "query_refused", "sql_syntax_error"})
_ROUND_SECONDS = 0.25  # the longest a coordinator sleeps without looking at the store (other workers' changes)
_STOP_WAIT_SECONDS = 30.0
_BACKSTOP_SECONDS = 2.0


@dataclass
class TaskContext:
    """What a task kind's handler sees: the owner, its run, and the time it has left."""

    svc: Services
    principal: Principal
    run: RunContext
    job_id: str
    job_run_id: str
    task_key: str
    deadline: float | None  # time.monotonic() at which the task's timeout ends

    def time_left(self, cap: float, /) -> float:
        """A statement's time limit: at most ``cap`` (the engine's own limit), and a little past the
        task's deadline, so that the run's timeout (which interrupts the statement and records
        ``timed_out``) comes first and the engine's limit is only the backstop."""
        if self.deadline is None:
            return cap
        return max(0.05, min(cap, self.deadline - time.monotonic() + _BACKSTOP_SECONDS))


@dataclass
class TaskState:
    """One task of a job run, as the coordinator and the status views see it."""

    task_key: str
    kind: str
    depends_on: list[str]
    state: str = "pending"  # pending, queued, running, waiting_retry, or a run's finished state
    run_id: str | None = None
    attempts: int = 0
    retries_used: int = 0
    retry_at: datetime | None = None
    resume: bool = False  # its worker died and the kind is exactly once: start it again
    error_code: str | None = None
    error: str | None = None
    result: dict[str, Any] | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    run_ids: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def values(self) -> dict[str, Any]:
        return dict((self.result or {}).get("values") or {})

    def public(self) -> dict[str, Any]:
        return {
            "task_key": self.task_key,
            "kind": self.kind,
            "depends_on": self.depends_on,
            "state": self.state,
            "run_id": self.run_id,
            "attempts": self.attempts,
            "error_code": self.error_code,
            "error": self.error,
            "values": self.values,
            "result": self.result,
            "log": self.log,
            "retry_at": self.retry_at.isoformat() if self.retry_at else None,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


@dataclass
class StatesMemo:
    """What :func:`task_states` keeps between the rounds of one coordinator. A task run's key,
    repair and order never change, nor does a finished task run: a task whose runs have all
    finished, or that has none yet, keeps the state worked out for it (a round then costs the tasks
    under way, not all). The states kept are shared between rounds: read them, never change them."""

    # run id -> (task key, repair, order among the task's runs)
    facts: dict[str, tuple[str, int, tuple[datetime, int]]] = field(default_factory=dict)
    # task key -> (its run ids, the state they settled in)
    settled: dict[str, tuple[tuple[str, ...], TaskState]] = field(default_factory=dict)


def task_states(
    job: JobSpec, children: list[Run], /, *, repair: int, rerun: set[str], memo: StatesMemo | None = None
) -> dict[str, TaskState]:
    """Each task's state from its task runs; see the module docstring."""
    memo = memo if memo is not None else StatesMemo()
    by_key: dict[str, list[Run]] = {}
    for child in children:
        facts = memo.facts.get(child.id)
        if facts is None:
            order = (child.created_at, int(child.params.get("attempt", 0)))
            facts = (str(child.params.get("task_key")), int(child.params.get("repair", 0)), order)
            memo.facts[child.id] = facts
        key, child_repair, _ = facts
        if key not in rerun or child_repair == repair:
            by_key.setdefault(key, []).append(child)
    known = kinds.registered()
    states: dict[str, TaskState] = {}
    for task in job.tasks:
        key = task.task_key
        mine = by_key.get(key)
        if mine is not None and len(mine) > 1:
            mine.sort(key=lambda c: memo.facts[c.id][2])
        ids = tuple(c.id for c in mine) if mine else ()
        kept = memo.settled.get(key)
        if kept is not None and kept[0] == ids:
            states[key] = kept[1]
            continue
        state = TaskState(key, task.kind, list(task.depends_on), run_ids=list(ids))
        states[key] = state
        if not mine:
            memo.settled[key] = ((), state)  # pending until its first task run: the same each round
        else:
            _settle(state, task, mine, known.get(task.kind))
            if all(c.finished for c in mine):
                memo.settled[key] = (ids, state)
    return states


def _settle(state: TaskState, task: TaskSpec, mine: list[Run], kind: kinds.TaskKind | None) -> None:
    latest = mine[-1]
    state.run_id = latest.id
    state.attempts = sum(1 for c in mine if not c.params.get("synthetic"))
    state.error_code, state.error, state.result = latest.error_code, latest.error, latest.result
    state.started_at, state.finished_at = latest.started_at, latest.finished_at
    state.log = list((latest.progress or {}).get("log") or (latest.result or {}).get("log") or [])
    state.retries_used = sum(
        1 for c in mine[:-1] if c.state in FAILED_STATES and not _resumable(c, kind) and not c.params.get("synthetic")
    )
    if not latest.finished or latest.state not in FAILED_STATES or latest.params.get("synthetic"):
        state.state = latest.state
    elif _resumable(latest, kind):
        state.state, state.resume = "waiting_retry", True
        state.retry_at = latest.finished_at
    elif _retryable(task, latest) and state.retries_used < task.max_retries:
        state.state = "waiting_retry"
        wait = task.min_retry_interval_seconds * (2**state.retries_used)
        state.retry_at = (latest.finished_at or utcnow()) + timedelta(seconds=wait)
    else:
        state.state = latest.state


def _resumable(run: Run, kind: kinds.TaskKind | None) -> bool:
    return run.error_code == "worker_lost" and kind is not None and kind.resumable


def _retryable(task: TaskSpec, run: Run) -> bool:
    if run.error_code in _NOT_RETRIED:
        return False
    return run.state != "timed_out" or task.retry_on_timeout


def children_of(svc: Services, job_run_id: str, /, *, tenant_id: str | None) -> list[Run]:
    with svc.store.session() as session:
        rows = runs_repo.list_runs(session, tenant_id=tenant_id, kind=TASK_RUN, parent_id=job_run_id)
        session.expunge_all()
    return rows


class _Children:
    """A job run's task runs, read again each round. Finished ones never change, so a round reads
    the ids and states of the unfinished ones and how many there are in all, then the rows of those
    whose state changed; all ids and states only when runs were created unseen (already ended).
    The runs the coordinator created are known from their insert, and the ends this process
    recorded from what they wrote (:func:`execute.take_end`): neither is read back.

    When every unfinished one is running in this process or has just ended here, the round knows
    all that changed without the store, and does not read it: a chain of tasks run here costs no
    read per task. The store is read whenever that is not so (a run queued for any worker, or
    ended elsewhere), when ``full`` asks (runs were created unseen), and at least every
    :data:`_ROUND_SECONDS`."""

    def __init__(self, svc: Services, job_run_id: str) -> None:
        self._svc = svc
        self._job_run_id = job_run_id
        self._finished: dict[str, Run] = {}
        self._open: dict[str, Run] = {}  # unfinished when last read
        self._taken: dict[str, dict[str, Any]] = {}  # ends taken from execute but not yet applied
        self._read_at: float | None = None  # time.monotonic() of the last read of the store

    def read(self, *, full: bool = False) -> list[Run]:
        recent = self._read_at is not None and time.monotonic() - self._read_at < _ROUND_SECONDS
        if not full and recent and (known_ends := self._ended_here_only()) is not None:
            rows = [self._apply(run_id, written) for run_id, written in known_ends.items()]
        else:
            rows = self._read_store()
        for row in rows:
            if row.finished:
                self._finished[row.id] = row
                self._open.pop(row.id, None)
            else:
                self._open[row.id] = row
        return [*self._finished.values(), *self._open.values()]

    def _read_store(self) -> list[Run]:
        """The rows of the runs that changed since the last look, read from the store."""
        self._read_at = time.monotonic()
        with self._svc.store.session() as session:
            active, total = runs_repo.active_children(session, self._job_run_id)
            ended = [run_id for run_id in self._open if run_id not in active]
            if total == len(self._finished) + len(ended) + len(active):
                states = [*((run_id, "") for run_id in ended), *active.items()]
            else:
                states = runs_repo.child_states(session, self._job_run_id)
            fresh = [
                (run_id, state)
                for run_id, state in states
                if run_id not in self._finished and (run_id not in self._open or self._open[run_id].state != state)
            ]
            rows = [row for run_id, state in fresh if (row := self._ended_here(run_id, state)) is not None]
            known = {row.id for row in rows}
            if unread := [run_id for run_id, _ in fresh if run_id not in known]:
                rows += runs_repo.get_runs(session, unread)
            session.expunge_all()
        return rows

    def added(self, created: list[Run], /) -> None:
        """Task runs this coordinator just created (committed): known without reading them, and
        their ends followed (before any of them starts)."""
        execute.follow_ends([run.id for run in created])
        for run in created:
            self._open[run.id] = run

    def _ended_here_only(self) -> dict[str, dict[str, Any]] | None:
        """What the ends of the open runs wrote (run id -> values), when every open run is known to
        be running in this process or to have ended here; None when one may have changed elsewhere."""
        launcher = self._svc.launcher
        ended: dict[str, dict[str, Any]] = {}
        for run_id, run in self._open.items():
            if run.state == "running" and launcher.local_run(run_id) is not None:
                continue  # its end, recorded here, is put before it stops being local
            written = self._take_end(run_id)
            if written is None:
                self._taken.update(ended)  # kept for the read of the store that follows
                return None
            ended[run_id] = written
        return ended

    def _ended_here(self, run_id: str, state: str) -> Run | None:
        """A run known open, now ended, whose end this process recorded: the row as that end left it."""
        if state in runs_repo.ACTIVE_STATES:
            return None
        written = self._take_end(run_id)
        if run_id not in self._open or written is None:
            return None
        return self._apply(run_id, written)

    def _take_end(self, run_id: str) -> dict[str, Any] | None:
        """What the end of ``run_id`` wrote, if this process recorded it (once)."""
        return self._taken.pop(run_id, None) or execute.take_end(run_id)

    def _apply(self, run_id: str, written: dict[str, Any]) -> Run:
        """An open run as its end, recorded here, left its row."""
        run = self._open[run_id]
        for name, value in written.items():
            setattr(run, name, value)
        return run


# -- the job run (coordinator) -----------------------------------------------------------------------


def _run_job(svc: Services, ctx: RunContext) -> dict[str, Any]:
    params = ctx.params
    if params.get("databricks_job_id"):
        from servicetsunami.services.pipelines import remote

        return remote.follow(svc, ctx)  # the workspace runs it: see remote.py
    job = JobSpec.model_validate(params["definition"])
    repair = int(params.get("repair", 0))
    rerun = set(params.get("rerun", []))
    principal = ctx.principal
    by_key = {t.task_key: t for t in job.tasks}
    order = [by_key[key] for key in graphlib.TopologicalSorter(job.graph()).static_order()]
    lookup = _lookup(params, ctx.run_id)
    reported: list[tuple[str, str]] = []
    children = _Children(svc, ctx.run_id)
    memo = StatesMemo()
    full = True  # read the store (not only what this process knows) at the next round
    while True:
        seen = svc.launcher.changes()  # a task that ends from here on wakes the wait below at once
        try:
            states = task_states(job, children.read(full=full), repair=repair, rerun=rerun, memo=memo)
            if ctx.cancelled:
                _stop(svc, ctx, job, states, repair)
                ctx.raise_if_cancelled()
            recorded, started = _advance(svc, ctx, principal, job, states, order, lookup, repair, children)
        except TsunamiError as exc:
            if not exc.is_transient or ctx.cancelled:
                raise
            logger.warning("job run %s: %s; trying again", ctx.run_id, exc.message)  # the store was busy
            full = True
            svc.launcher.wait_change(_ROUND_SECONDS)
            continue
        full = recorded  # task runs recorded as ended when created are only known from the store
        if recorded:
            continue  # read again: a task recorded as ended (skipped, failed to start) may free others
        # What was started frees nothing until it ends, which wakes the wait below (as does any
        # change since this round's read), so the store is not read again before then.
        shown = {k: started.get(k, s.state) for k, s in states.items()}
        now_seen = list(shown.items())
        ended = all(state in TERMINAL_STATES for state in shown.values())
        if now_seen != reported or ended or ctx.progress_held == 0.0:
            reported = now_seen
            _report_quietly(ctx, shown, final=ended)
        if ended:
            break
        wake = _next_wake(states)
        if (held := ctx.progress_held) is not None:  # written once the rate limit allows
            wake = min(wake, held)
        svc.launcher.wait_change(wake, after=seen)
    summary = {k: s.public() for k, s in states.items()}
    bad = [s for s in states.values() if s.state in FAILED_STATES or s.error_code == "upstream_failed"]
    if bad:
        listed = ", ".join(f"{s.task_key} ({s.error_code or s.state})" for s in bad[:10])
        raise JobRunFailed(f"{len(bad)} of {len(states)} tasks did not succeed: {listed}")
    return {"tasks": summary}


def _lookup(params: dict[str, Any], run_id: str) -> dict[str, str]:
    lookup = {"job.run_id": run_id, "job.id": str(params.get("job_id", ""))}
    for name, value in dict(params.get("parameters") or {}).items():
        lookup[f"job.parameters.{name}"] = str(value)
    return lookup


def _advance(
    svc: Services,
    ctx: RunContext,
    principal: Principal,
    job: JobSpec,
    states: dict[str, TaskState],
    order: list[TaskSpec],
    lookup: dict[str, str],
    repair: int,
    children: _Children,
) -> tuple[bool, dict[str, str]]:
    """Start or skip what can be (the new task runs are queued in one transaction); whether a task
    was recorded as ended (skipped, or failed to start), and the tasks started (key -> the state
    their new task run is in: ``running`` when this process executes it, else ``queued``)."""
    now = utcnow()
    values: dict[str, str] | None = None
    starts: list[tuple[TaskSpec, TaskState, dict[str, Any]]] = []
    changed = False
    for task in order:
        key = task.task_key
        state = states[key]
        if state.state not in ("pending", "waiting_retry"):
            continue
        if state.state == "waiting_retry" and state.retry_at is not None and state.retry_at > now:
            continue
        deps = [states[d] for d in task.depends_on]
        if not all(d.terminal for d in deps):
            continue
        skip = _skip_reason(task, deps)
        if skip is not None:
            _record(svc, ctx, principal, job, task, repair, state="skipped", code=skip[0], error=skip[1])
            changed = True
            continue
        if len(starts) >= svc.settings.jobs.max_parallel_tasks:
            break  # more cannot start at once; _start trims to what the tenant has room for
        config = task.config
        if has_templates(config):
            if values is None:
                values = dict(lookup)
                for dep_key, dep in states.items():
                    for name, value in dep.values.items():
                        values[f"tasks.{dep_key}.values.{name}"] = str(value)
            try:
                config = render(config, values)
            except InvalidInput as exc:
                _record(svc, ctx, principal, job, task, repair, state="failed", code=exc.code, error=exc.message)
                changed = True
                continue
        starts.append((task, state, config))
    started = _start(svc, ctx, principal, starts, repair, children) if starts else {}
    return changed, started


def _start(
    svc: Services,
    ctx: RunContext,
    principal: Principal,
    starts: list[tuple[TaskSpec, TaskState, dict[str, Any]]],
    repair: int,
    children: _Children,
) -> dict[str, str]:
    """Queue the task runs there is room for (the tenant's limit); returns their tasks' keys and
    states (the first ``here`` are created claimed by this process and run at once)."""
    job_id = ctx.params.get("job_id")
    launcher = svc.launcher
    here = 0  # slots of this process held for task runs created already claimed (they skip the queue)
    adopted: list[ClaimedRun] = []
    try:
        with svc.store.session(write_lock=True) as session:  # counted and queued together: other job runs wait
            runs_repo.lock_slots(session, tenant_id=principal.tenant_id, kind=TASK_RUN)
            active = runs_repo.count_active(session, tenant_id=principal.tenant_id, kind=TASK_RUN)
            starts = starts[: max(0, svc.settings.jobs.max_parallel_tasks - active)]
            here = launcher.reserve(TASK_RUN, len(starts))
            rows = [
                {
                    "tenant_id": principal.tenant_id,
                    "kind": TASK_RUN,
                    "subject": principal.subject,
                    "role": principal.run_role.value,
                    "params": {
                        "job_id": job_id,
                        "job_run_id": ctx.run_id,
                        "task_key": task.task_key,
                        "kind": task.kind,
                        "config": config,
                        "repair": repair,
                        "attempt": state.attempts + 1,
                        "resumed": state.resume,
                    },
                    "resource_id": job_id,
                    "parent_id": ctx.run_id,
                    "timeout_seconds": task.timeout_seconds,
                }
                for task, state, config in starts
            ]
            created = runs_repo.create_runs(session, rows, worker=launcher.worker_id, claimed=here)
            ids = [row["id"] for row in created]
            pairs = zip(ids[:here], rows[:here], strict=True)
            claimed = [_claimed(run_id, row, principal.tenant_slug) for run_id, row in pairs]
        # Committed: the task runs claimed here start now; the others wait in the queue for any worker.
        children.added(runs_repo.detached(created))
        for run in claimed:
            launcher.adopt(run)
            here -= 1
            adopted.append(run)
    finally:
        launcher.release(TASK_RUN, here)
    if len(starts) > len(adopted):
        runs.ensure_worker(svc)
        launcher.kick()
    mine = {run.id for run in adopted}
    return {
        task.task_key: "running" if run_id in mine else "queued"
        for (task, _, _), run_id in zip(starts, ids, strict=True)
    }


def _claimed(run_id: str, row: dict[str, Any], tenant_slug: str) -> ClaimedRun:
    """A task run created already claimed by this process (its first attempt)."""
    return ClaimedRun(
        id=run_id,
        kind=TASK_RUN,
        tenant_id=row["tenant_id"],
        tenant_slug=tenant_slug,
        subject=row["subject"],
        role=row["role"],
        params=dict(row["params"]),
        attempt=1,
        max_attempts=1,
        timeout_seconds=row["timeout_seconds"],
    )


def _skip_reason(task: TaskSpec, deps: list[TaskState]) -> tuple[str, str] | None:
    if not deps or task.run_if == "all_done":
        return None
    if task.run_if == "all_success":
        not_ok = [d.task_key for d in deps if d.state != "succeeded"]
        if not_ok:
            return "upstream_failed", f"skipped: upstream task(s) {', '.join(not_ok)} did not succeed"
        return None
    if any(d.state in FAILED_STATES for d in deps):
        return None
    return "excluded", "skipped: run_if is at_least_one_failed and no upstream task failed"


def _record(
    svc: Services,
    ctx: RunContext,
    principal: Principal,
    job: JobSpec,
    task: TaskSpec,
    repair: int,
    *,
    state: str,
    code: str,
    error: str,
) -> None:
    """A task run that ends as it is created: skipped, canceled before it started, or failed to start."""
    with svc.store.session() as session:
        row = runs_repo.create_run(
            session,
            tenant_id=principal.tenant_id,
            kind=TASK_RUN,
            subject=principal.subject,
            role=principal.run_role.value,
            params={
                "job_id": ctx.params.get("job_id"),
                "job_run_id": ctx.run_id,
                "task_key": task.task_key,
                "kind": task.kind,
                "repair": repair,
                "synthetic": state != "failed",
            },
            resource_id=ctx.params.get("job_id"),
            parent_id=ctx.run_id,
        )
        runs_repo.finish(session, row.id, state=state, error=error, error_code=code)
    svc.launcher.notify()


def _stop(svc: Services, ctx: RunContext, job: JobSpec, states: dict[str, TaskState], repair: int) -> None:
    """The job run is canceled or timed out: stop its running tasks, mark the others canceled. When
    the service is stopping, leave them: the job run is queued again and picks them up."""
    if ctx.cancel_reason in ("shutdown", "lost"):
        return
    active = [s.run_id for s in states.values() if s.state in ("queued", "running") and s.run_id]
    for run_id in active:
        with svc.store.session(write_lock=True) as session:
            runs_repo.request_cancel(session, run_id, tenant_id=None)
        local = svc.launcher.local_run(run_id)
        if local is not None:
            local.request_cancel("canceled")
    why = "the job run timed out" if ctx.cancel_reason == "timed_out" else "the job run was canceled"
    for state in states.values():
        if state.state in ("pending", "waiting_retry"):
            _record(
                svc,
                ctx,
                ctx.principal,
                job,
                job.task(state.task_key),
                repair,
                state="canceled",
                code="cancelled",
                error=f"{why} before this task started",
            )
    deadline = time.monotonic() + _STOP_WAIT_SECONDS
    while active and time.monotonic() < deadline:
        with svc.store.session() as session:
            active = [r for r in active if not runs_repo.get_run(session, r, tenant_id=None).finished]
        if active:
            svc.launcher.wait_change(_ROUND_SECONDS)


def _report(ctx: RunContext, shown: dict[str, str], *, final: bool = False) -> None:
    """Progress in tasks (task key -> state); written at most every quarter second, and always at the end."""
    done = sum(1 for state in shown.values() if state in TERMINAL_STATES)
    counts: dict[str, int] = {}
    for state in shown.values():
        counts[state] = counts.get(state, 0) + 1
    message = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    ctx.progress(done=done, total=len(shown), unit="tasks", message=message, force=final, tasks=counts)


def _report_quietly(ctx: RunContext, shown: dict[str, str], *, final: bool) -> None:
    try:
        _report(ctx, shown, final=final)
    except TsunamiError as exc:  # progress is for show; the task runs hold the states
        logger.warning("job run %s: progress not recorded: %s", ctx.run_id, exc.message)


def _next_wake(states: dict[str, TaskState]) -> float:
    wake = _ROUND_SECONDS
    now = utcnow()
    for s in states.values():
        if s.state == "waiting_retry" and s.retry_at is not None:
            wake = min(wake, max(0.0, (s.retry_at - now).total_seconds()))
    return wake


# -- the task run ------------------------------------------------------------------------------------


def _run_task(svc: Services, ctx: RunContext) -> dict[str, Any]:
    params = ctx.params
    kind = kinds.get(str(params.get("kind")))
    if kind is None:
        raise InvalidInput(f"task kind {params.get('kind')!r} is not known here")
    if kind.unavailable is not None or kind.handler is None:
        raise TaskKindUnavailable(kind.unavailable or f"{kind.name} tasks cannot run here")
    config = kind.config.model_validate(params.get("config") or {})
    timeout = ctx.timeout_seconds
    task_ctx = TaskContext(
        svc=svc,
        principal=ctx.principal,
        run=ctx,
        job_id=str(params.get("job_id")),
        job_run_id=str(params.get("job_run_id")),
        task_key=str(params.get("task_key")),
        deadline=time.monotonic() + timeout if timeout else None,
    )
    stops = Stops()
    ctx.on_cancel(stops.stop_all)
    ctx.raise_if_cancelled()
    log = _TaskLog()
    try:
        with stoppable(stops.add), log.capture():  # a cancel or the timeout interrupts the task's statements
            result = kind.handler(svc, task_ctx, config)  # an error while canceled is recorded as canceled/timed out
    except BaseException as exc:
        if log.lines:  # kept with the task run's progress, which survives a failure
            with contextlib.suppress(TsunamiError):
                ctx.progress(force=True, log=log.lines)
        if isinstance(exc, TsunamiError) and task_ctx.deadline is not None and time.monotonic() >= task_ctx.deadline:
            # The engine's backstop came first (a busy machine): the launcher's timeout follows, and
            # the run is recorded as timed out rather than as the statement's error.
            ctx.wait_cancelled(svc.settings.runs.heartbeat_seconds * 2)
        raise
    ctx.raise_if_cancelled()
    # On success the log lines travel with the result: one store write fewer per task.
    return {**result, "log": log.lines} if log.lines else result


class _TaskLog(logging.Handler):
    """The service's log records of this thread while a task runs: its last lines, redacted."""

    MAX_LINES = 200

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self._thread = threading.get_ident()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self._thread:
            return
        try:
            self.lines.append(redact(self.format(record))[:2000])
        except Exception:  # a record that cannot be formatted is left out, never breaks the task
            return
        del self.lines[: -self.MAX_LINES]

    @contextlib.contextmanager
    def capture(self) -> Iterator[None]:
        root = logging.getLogger("servicetsunami")
        root.addHandler(self)
        try:
            yield
        finally:
            root.removeHandler(self)


def _job_run_slots(settings: Settings) -> int:
    return max(1, settings.runs.max_parallel // 2)  # leave room for the task runs the coordinators start


def _tick_schedules(svc: Services) -> float | None:
    from servicetsunami.services.pipelines import schedules

    schedules.tick(svc)
    return schedules.seconds_to_next_tick(svc)


register(
    RunKind(
        JOB_RUN,
        _run_job,
        requeue_when_lost=True,
        max_parallel=_job_run_slots,
        ticker=_tick_schedules,
        ticker_seconds=lambda settings: settings.jobs.tick_seconds,
    )
)
register(RunKind(TASK_RUN, _run_task))
