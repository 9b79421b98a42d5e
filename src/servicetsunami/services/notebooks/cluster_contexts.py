"""Execution contexts on an all-purpose cluster (engines with clusters: Databricks' Command Execution
API 1.2). :mod:`~servicetsunami.services.notebooks.contexts` hands its calls here on such an engine;
the answers have the shapes of the local contexts, so the front doors do not change.

- The cluster is the caller's ``cluster_id``, else ``databricks.cluster_id``, else ``invalid_input``.
  Its state is read first (the SDK would retry a "not ready" answer for minutes): a cluster that is
  not running is reported as ``conflict`` with its state, unless the caller asked
  for ``start_cluster``: then it is started and waited for (``databricks.cluster_start_timeout_seconds``).
- A new context runs ``USE CATALOG <tenant catalog>`` first, so ``schema.table`` names resolve in the
  tenant's catalog as they do locally. That is a default, not a boundary: **code runs on the cluster
  with the workspace identity the engine uses**, not in this server's sandbox, and reaches whatever
  that identity (and the cluster's access mode) may reach.
- A context belongs to its creator's tenant (another tenant gets ``not_found``), counts against
  ``sandbox.max_contexts_per_tenant``, is destroyed on the cluster after ``sandbox.context_idle_seconds``
  without use, and lives in the registry of the worker that made it, like a local one.
- The API's statuses map to ours: a command whose code raised is ``Finished`` with an ``error``
  result there and ``Error`` here; ``Cancelling`` and anything after our cancel are ``Cancelled``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from servicetsunami.engines.base import ClusterCommand
from servicetsunami.errors import Conflict, EngineError, InvalidInput, NotFound, TsunamiError
from servicetsunami.services.notebooks import contexts as models  # a cycle: it hands its calls here
from servicetsunami.tenancy import Principal

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

logger = logging.getLogger(__name__)

CONTEXT_START_SECONDS = 300.0  # a context on a running cluster is usually ready in seconds
CLOSE_SECONDS = 10.0
_ENDED = frozenset({"Finished", "Error", "Cancelled"})


@dataclass
class _ClusterContext:
    id: str
    tenant_id: str
    cluster_id: str
    remote_id: str
    language: str
    last_used: float = field(default_factory=time.monotonic)
    commands: dict[str, bool] = field(default_factory=dict)  # command id -> cancelled through us
    closed: bool = False


class _Registry:
    def __init__(self) -> None:
        self.contexts: dict[str, _ClusterContext] = {}
        self.lock = threading.Lock()


_REGISTRIES: dict[int, _Registry] = {}
_REGISTRIES_LOCK = threading.Lock()


def _registry(svc: Services) -> _Registry:
    with _REGISTRIES_LOCK:
        return _REGISTRIES.setdefault(id(svc), _Registry())


def holds(svc: Services, context_id: str, /) -> bool:
    """Whether ``context_id`` is a cluster context of this worker (of any tenant)."""
    with _registry(svc).lock:
        return context_id in _registry(svc).contexts


def live(svc: Services, tenant_id: str, /) -> int:
    with _registry(svc).lock:
        return sum(1 for c in _registry(svc).contexts.values() if c.tenant_id == tenant_id and not c.closed)


def create(
    svc: Services, principal: Principal, /, *, language: str, cluster_id: str | None, start_cluster: bool, worker: str
) -> models.ContextPublic:
    cluster = _cluster(svc, cluster_id)
    if start_cluster:
        _running(svc, cluster)
    else:  # asked first: the SDK retries "not ready" answers for minutes
        _refuse_unless_running(svc, cluster)
    engine = svc.engine
    try:
        remote_id = engine.create_cluster_context(cluster, language=language)
    except InvalidInput as exc:
        _refused_because_not_running(svc, cluster, exc)
        raise
    ctx = _ClusterContext(f"{worker}-{uuid.uuid4().hex}", principal.tenant_id, cluster, remote_id, language)
    try:
        _ready(svc, ctx)
        _use_catalog(svc, ctx, principal.catalog)
    except BaseException:
        _destroy_remote(svc, ctx)
        raise
    with _registry(svc).lock:
        _registry(svc).contexts[ctx.id] = ctx
    return _public(ctx, "Running")


def _cluster(svc: Services, cluster_id: str | None) -> str:
    chosen = cluster_id or svc.settings.databricks.cluster_id
    if not chosen:
        raise InvalidInput(
            "execution contexts run on a cluster: pass cluster_id (list_clusters shows them) or set "
            "TSUNAMI_DATABRICKS__CLUSTER_ID"
        )
    return chosen


def _running(svc: Services, cluster: str) -> None:
    """Start the cluster if it is terminated, and wait (bounded) until it runs."""
    engine = svc.engine
    timeout = svc.settings.databricks.cluster_start_timeout_seconds
    deadline = time.monotonic() + timeout
    info = engine.get_cluster(cluster)
    if info.state == "TERMINATED":
        logger.info("starting cluster %s for an execution context", cluster)
        info = engine.start_cluster(cluster)
    pause = 0.05
    while info.state != "RUNNING":
        if info.state in ("ERROR", "UNKNOWN", "TERMINATING", "TERMINATED"):
            why = info.state_message or "see the workspace"
            raise Conflict(f"cluster {cluster} is {info.state}, not starting: {why}")
        if time.monotonic() > deadline:
            raise EngineError(
                f"cluster {cluster} was not running after {timeout:g} s (it is {info.state}); try again later",
                transient=True,
            )
        time.sleep(pause)
        pause = min(pause * 2, 5.0)
        info = engine.get_cluster(cluster)


def _refuse_unless_running(svc: Services, cluster: str) -> None:
    state = svc.engine.get_cluster(cluster).state
    if state not in ("RUNNING", "RESIZING"):
        raise Conflict(
            f"cluster {cluster} is {state}, not RUNNING; start it (start_cluster) or ask for start_cluster=true"
        )


def _refused_because_not_running(svc: Services, cluster: str, exc: InvalidInput) -> None:
    """The API refused a context: say so as a conflict when the cluster is not running."""
    try:
        state = svc.engine.get_cluster(cluster).state
    except TsunamiError:
        return
    if state not in ("RUNNING", "RESIZING"):
        raise Conflict(
            f"cluster {cluster} is {state}, not RUNNING; start it (start_cluster) or ask for start_cluster=true"
        ) from exc


def _ready(svc: Services, ctx: _ClusterContext) -> None:
    deadline = time.monotonic() + CONTEXT_START_SECONDS
    pause = 0.05
    while True:
        status = svc.engine.cluster_context_status(ctx.cluster_id, ctx.remote_id)
        if status == "Running":
            return
        if status == "Error":
            raise EngineError(f"the execution context on cluster {ctx.cluster_id} failed to start; try again")
        if time.monotonic() > deadline:
            raise EngineError(
                f"the execution context on cluster {ctx.cluster_id} was not ready after {CONTEXT_START_SECONDS:g} s",
                transient=True,
            )
        time.sleep(pause)
        pause = min(pause * 2, 1.0)


def _use_catalog(svc: Services, ctx: _ClusterContext, catalog: str) -> None:
    command_id = svc.engine.execute_cluster_command(
        ctx.cluster_id, ctx.remote_id, f"USE CATALOG `{catalog}`", language="sql"
    )
    done = _poll(svc, ctx, command_id, timeout=CONTEXT_START_SECONDS)
    if done.status != "Finished" or done.result_type == "error":
        raise EngineError(
            f"the context on cluster {ctx.cluster_id} could not use the tenant catalog {catalog}: "
            f"{done.summary or done.cause or done.status}"
        )


def get(svc: Services, principal: Principal, context_id: str, /) -> _ClusterContext:
    with _registry(svc).lock:
        ctx = _registry(svc).contexts.get(context_id)
    if ctx is None or ctx.tenant_id != principal.tenant_id or ctx.closed:
        raise NotFound("context not found (destroyed or idle too long)")
    return ctx


def status(svc: Services, ctx: _ClusterContext, /) -> models.ContextPublic:
    return _public(ctx, svc.engine.cluster_context_status(ctx.cluster_id, ctx.remote_id))


def execute(svc: Services, ctx: _ClusterContext, command: str, /) -> models.CommandPublic:
    ctx.last_used = time.monotonic()
    command_id = svc.engine.execute_cluster_command(ctx.cluster_id, ctx.remote_id, command, language=ctx.language)
    ctx.commands[command_id] = False
    return models.CommandPublic(id=command_id, status="Queued")


def command_status(svc: Services, ctx: _ClusterContext, command_id: str, /) -> models.CommandPublic:
    if command_id not in ctx.commands:
        raise NotFound("command not found in this context")
    ctx.last_used = time.monotonic()  # a command followed keeps its context from being reaped
    return _ours(svc.engine.cluster_command_status(ctx.cluster_id, ctx.remote_id, command_id), ctx.commands[command_id])


def wait(svc: Services, ctx: _ClusterContext, command_id: str, /, *, timeout: float) -> models.CommandPublic:
    deadline = time.monotonic() + timeout
    pause = 0.05
    while True:
        answer = command_status(svc, ctx, command_id)
        left = deadline - time.monotonic()
        if answer.status in _ENDED or left <= 0:
            return answer
        time.sleep(min(pause, left))
        pause = min(pause * 2, 1.0)


def cancel(svc: Services, ctx: _ClusterContext, command_id: str, /) -> models.CommandPublic:
    now = command_status(svc, ctx, command_id)
    if now.status in _ENDED:
        return now
    ctx.commands[command_id] = True
    svc.engine.cancel_cluster_command(ctx.cluster_id, ctx.remote_id, command_id)
    _poll(svc, ctx, command_id, timeout=svc.settings.sandbox.interrupt_grace_seconds)
    return models.CommandPublic(id=command_id, status="Cancelled")


def destroy(svc: Services, ctx: _ClusterContext, /) -> None:
    _forget(svc, ctx)
    svc.engine.destroy_cluster_context(ctx.cluster_id, ctx.remote_id)


def reap_idle(svc: Services, /) -> int:
    idle = svc.settings.sandbox.context_idle_seconds
    now = time.monotonic()
    with _registry(svc).lock:
        stale = [c for c in _registry(svc).contexts.values() if now - c.last_used > idle]
    for ctx in stale:
        _forget(svc, ctx)
        _destroy_remote(svc, ctx)
    return len(stale)


def close_all(svc: Services, /) -> None:
    """Destroy every cluster context of this worker (its registry goes with the process), all at
    once and for at most ``CLOSE_SECONDS``: a workspace that does not answer does not hold up a stop."""
    with _registry(svc).lock:
        every = list(_registry(svc).contexts.values())
    threads = []
    for ctx in every:
        _forget(svc, ctx)
        threads.append(threading.Thread(target=_destroy_remote, args=(svc, ctx), daemon=True))
        threads[-1].start()
    deadline = time.monotonic() + CLOSE_SECONDS
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    with _REGISTRIES_LOCK:
        _REGISTRIES.pop(id(svc), None)


def _forget(svc: Services, ctx: _ClusterContext) -> None:
    ctx.closed = True
    with _registry(svc).lock:
        _registry(svc).contexts.pop(ctx.id, None)


def _destroy_remote(svc: Services, ctx: _ClusterContext) -> None:
    with contextlib.suppress(TsunamiError):
        svc.engine.destroy_cluster_context(ctx.cluster_id, ctx.remote_id)


def _poll(svc: Services, ctx: _ClusterContext, command_id: str, *, timeout: float) -> ClusterCommand:
    deadline = time.monotonic() + timeout
    pause = 0.05
    while True:
        done = svc.engine.cluster_command_status(ctx.cluster_id, ctx.remote_id, command_id)
        if done.status in _ENDED or time.monotonic() > deadline:
            return done
        time.sleep(pause)
        pause = min(pause * 2, 1.0)


def _ours(cmd: ClusterCommand, cancelled: bool) -> models.CommandPublic:
    if cancelled or cmd.status in ("Cancelling", "Cancelled"):
        return models.CommandPublic(id=cmd.id, status="Cancelled")
    if cmd.status not in _ENDED:
        return models.CommandPublic(id=cmd.id, status=cmd.status)
    if cmd.status == "Error" or cmd.result_type == "error":
        cause = cmd.cause or cmd.summary or "the cluster's execution environment failed; create a new context"
        results = models.CommandResults(resultType="error", cause=cause, summary=cmd.summary)
        return models.CommandPublic(id=cmd.id, status="Error", results=results)
    if cmd.result_type == "table":
        results = models.CommandResults(resultType="table", data=cmd.data, schema=cmd.schema, truncated=cmd.truncated)
    elif cmd.result_type in ("image", "images"):
        data = cmd.data[-1] if isinstance(cmd.data, list) and cmd.data else cmd.data
        results = models.CommandResults(resultType="image", data=data)
    else:
        results = models.CommandResults(resultType="text", data=cmd.data if cmd.data is not None else "")
    return models.CommandPublic(id=cmd.id, status="Finished", results=results)


def _public(ctx: _ClusterContext, remote_status: str) -> models.ContextPublic:
    return models.ContextPublic(
        id=ctx.id,
        worker=ctx.id.partition("-")[0],
        language=ctx.language,
        status=remote_status,
        commands=len(ctx.commands),
        cluster_id=ctx.cluster_id,
    )
