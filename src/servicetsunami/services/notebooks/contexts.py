"""Command execution contexts (Databricks' Command Execution API 1.2, seed 004): a context is a
sandboxed kernel that keeps its state between commands.

``create_context`` starts one (Python or SQL), ``execute_command`` queues a command and returns its
id at once, ``get_command_status`` says ``Queued | Running | Finished | Error | Cancelled`` with a
typed result (``text``, ``table``, ``image`` or ``error``, as the 1.2 API shapes it),
``cancel_command`` interrupts it, ``destroy_context`` stops the kernel. A tenant has at most
``sandbox.max_contexts_per_tenant`` live contexts, and a context idle for
``sandbox.context_idle_seconds`` is destroyed.

Contexts live in the process that created them (a kernel is a child of that process): with
``tsunami serve --workers N`` a context answers only on its own worker. A context id starts with its
worker's id (``<worker>-<hex>``, also in ``ContextPublic.worker``), so another worker answers
``not_found`` naming the worker that holds it, and a proxy can route by that prefix (sticky
sessions) instead of guessing.

On an engine with clusters (Databricks) a context is an execution context on an all-purpose cluster
instead, through the Command Execution API: see
:mod:`~servicetsunami.services.notebooks.cluster_contexts` (the calls here hand over to it; the
answers keep these shapes). Its code runs on the cluster, not in this server's sandbox.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar

from pydantic import BaseModel, Field

from servicetsunami import metrics
from servicetsunami.errors import InvalidInput, LimitExceeded, NotFound
from servicetsunami.runs.sandbox.kernels import Kernel, release_thread_loop
from servicetsunami.runs.sandbox.shim import TABLE_MIME
from servicetsunami.runs.sandbox.wire import BridgeServer
from servicetsunami.services.notebooks import cluster_contexts
from servicetsunami.services.notebooks.runs import open_kernel
from servicetsunami.tenancy import Principal, Scope

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

logger = logging.getLogger(__name__)

Language = Literal["python", "sql"]
P = ParamSpec("P")
T = TypeVar("T")
MAX_COMMAND_CHARS = 1_000_000
_CLUSTER_ID = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


class ContextPublic(BaseModel):
    id: str
    worker: str = Field(description="The server worker process holding the context; its commands must reach it")
    language: str
    status: str = Field(description="Running (ready for commands)")
    commands: int = Field(description="Commands executed so far")
    cluster_id: str | None = Field(None, description="The cluster it runs on (Databricks); none: this server's sandbox")


class CommandResults(BaseModel):
    resultType: str = Field(description="text, table, image or error")  # the 1.2 API's name
    data: Any = None
    schema_: list[dict[str, str]] | None = Field(None, alias="schema")
    truncated: bool | None = None
    cause: str | None = None
    summary: str | None = None


class CommandPublic(BaseModel):
    id: str
    status: str = Field(description="Queued, Running, Finished, Error or Cancelled")
    results: CommandResults | None = None


@dataclass
class _Command:
    id: str
    code: str
    status: str = "Queued"
    results: CommandResults | None = None


@dataclass
class _Context:
    id: str
    tenant_id: str
    language: str
    kernel: Kernel
    server: BridgeServer
    last_used: float = field(default_factory=time.monotonic)
    commands: dict[str, _Command] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)  # one command at a time
    current: str | None = None  # the command running now
    started: threading.Event = field(default_factory=threading.Event)  # the kernel began the current one
    closed: bool = False

    def close(self, *, grace: float = 0.0) -> None:
        """Close the kernel. A command still running is interrupted and given ``grace`` seconds to
        end first, so that its thread is done with the kernel's sockets before they close (a zmq
        socket closed under another thread's poll is not safe)."""
        if not self.closed:
            metrics.SANDBOX_CONTEXTS.dec()
        self.closed = True
        held = self.kernel.interrupt_until(
            lambda: self.lock.acquire(blocking=False), started=self.started, seconds=grace
        )
        try:
            self.server.close()
            self.kernel.close()
        finally:
            if held:
                self.lock.release()


class _Registry:
    def __init__(self) -> None:
        self.contexts: dict[str, _Context] = {}
        self.lock = threading.Lock()
        self.worker = f"w{uuid.uuid4().hex[:8]}"  # this process's (this container's) id in context ids


_REGISTRIES: dict[int, _Registry] = {}
_REGISTRIES_LOCK = threading.Lock()


def _registry(svc: Services) -> _Registry:
    with _REGISTRIES_LOCK:
        return _REGISTRIES.setdefault(id(svc), _Registry())


def _reap_idle(svc: Services) -> int:
    """Destroy contexts idle longer than the setting; returns how many."""
    reaped = cluster_contexts.reap_idle(svc)
    idle = svc.settings.sandbox.context_idle_seconds
    reg = _registry(svc)
    now = time.monotonic()
    with reg.lock:
        stale = [c for c in reg.contexts.values() if now - c.last_used > idle and not c.lock.locked()]
        for ctx in stale:
            del reg.contexts[ctx.id]
    for ctx in stale:
        ctx.close()
    return reaped + len(stale)


def _close_all(svc: Services) -> None:
    cluster_contexts.close_all(svc)
    reg = _registry(svc)
    with reg.lock:
        every = list(reg.contexts.values())
        reg.contexts.clear()
    for ctx in every:
        ctx.close(grace=svc.settings.sandbox.interrupt_grace_seconds)


def live_contexts(svc: Services, tenant_id: str, /) -> int:
    """How many contexts of the tenant are alive in this process."""
    reg = _registry(svc)
    with reg.lock:
        return sum(1 for c in reg.contexts.values() if c.tenant_id == tenant_id and not c.closed)


def _create_context(
    svc: Services,
    principal: Principal,
    /,
    *,
    language: str = "python",
    cluster_id: str | None = None,
    start_cluster: bool = False,
) -> ContextPublic:
    """A new context; on an engine with clusters, on ``cluster_id`` (else the configured one), started
    first when ``start_cluster``. Elsewhere code runs in the sandbox pool, whose id is ``sandbox``."""
    principal.require(Scope.WRITE)
    if language not in ("python", "sql"):
        raise InvalidInput("language is python or sql")
    if cluster_id is not None and (not isinstance(cluster_id, str) or not _CLUSTER_ID.fullmatch(cluster_id)):
        raise InvalidInput("a cluster id is 1-100 letters, digits, '.', '-' or '_'; list_clusters shows the ids")
    clusters = svc.engine.capabilities.clusters
    if not clusters and cluster_id not in (None, "sandbox"):
        raise NotFound(f"no cluster {cluster_id!r}: code runs in this server's sandbox pool, 'sandbox'")
    _reap_idle(svc)
    limit = svc.settings.sandbox.max_contexts_per_tenant
    if live_contexts(svc, principal.tenant_id) + cluster_contexts.live(svc, principal.tenant_id) >= limit:
        raise LimitExceeded(f"at most {limit} live contexts per tenant; destroy one first")
    if clusters:
        return cluster_contexts.create(
            svc,
            principal,
            language=language,
            cluster_id=cluster_id,
            start_cluster=start_cluster,
            worker=_registry(svc).worker,
        )
    folder = uuid.uuid4().hex  # the folder name stays short: unix socket paths inside are at most 108 bytes
    context_id = f"{_registry(svc).worker}-{folder}"
    kernel, server = open_kernel(svc, principal, "c-" + folder, env={"TSUNAMI_NOTEBOOK_LANGUAGE": language})
    ctx = _Context(context_id, principal.tenant_id, language, kernel, server)
    metrics.SANDBOX_CONTEXTS.inc()
    with _registry(svc).lock:
        _registry(svc).contexts[context_id] = ctx
    return _public(ctx)


def _get(svc: Services, principal: Principal, context_id: str) -> _Context:
    with _registry(svc).lock:
        ctx = _registry(svc).contexts.get(context_id)
    if ctx is None or ctx.tenant_id != principal.tenant_id or ctx.closed:
        owner = context_id.partition("-")[0] if "-" in context_id else ""
        if ctx is None and owner and owner != _registry(svc).worker:
            raise NotFound(
                f"context not found on this worker: it was made by worker {owner}, and a context's kernel lives "
                "in the worker process that made it; send its requests to that worker (route by the id's prefix) "
                "or run one worker"
            )
        raise NotFound("context not found (destroyed or idle too long)")
    return ctx


def context_status(svc: Services, principal: Principal, context_id: str, /) -> ContextPublic:
    principal.require(Scope.READ)
    if cluster_contexts.holds(svc, context_id):
        return cluster_contexts.status(svc, cluster_contexts.get(svc, principal, context_id))
    return _public(_get(svc, principal, context_id))


def _destroy_context(svc: Services, principal: Principal, context_id: str, /) -> None:
    principal.require(Scope.WRITE)
    if cluster_contexts.holds(svc, context_id):
        cluster_contexts.destroy(svc, cluster_contexts.get(svc, principal, context_id))
        return
    ctx = _get(svc, principal, context_id)
    with _registry(svc).lock:
        _registry(svc).contexts.pop(context_id, None)
    ctx.close(grace=svc.settings.sandbox.interrupt_grace_seconds)


def execute_command(svc: Services, principal: Principal, context_id: str, command: str, /) -> CommandPublic:
    """Queue ``command`` in the context; it runs after the ones before it. Returns its id at once."""
    principal.require(Scope.WRITE)
    if not isinstance(command, str) or not command.strip() or len(command) > MAX_COMMAND_CHARS:
        raise InvalidInput(f"command is non-empty text of at most {MAX_COMMAND_CHARS} characters")
    if cluster_contexts.holds(svc, context_id):
        return cluster_contexts.execute(svc, cluster_contexts.get(svc, principal, context_id), command)
    ctx = _get(svc, principal, context_id)
    ctx.last_used = time.monotonic()
    cmd = _Command(uuid.uuid4().hex, command)
    ctx.commands[cmd.id] = cmd
    threading.Thread(target=_run, args=(svc, ctx, cmd), name=f"command-{cmd.id[:8]}", daemon=True).start()
    return CommandPublic(id=cmd.id, status=cmd.status)


def _run(svc: Services, ctx: _Context, cmd: _Command) -> None:
    try:
        with ctx.lock:
            if cmd.status == "Cancelled" or ctx.closed:
                return
            cmd.status = "Running"
            ctx.started.clear()
            ctx.current = cmd.id
            code = cmd.code if ctx.language == "python" or cmd.code.lstrip().startswith("%") else "%sql\n" + cmd.code
            try:
                done = ctx.kernel.execute(
                    code, timeout=svc.settings.sandbox.notebook_timeout_seconds, started=ctx.started
                )
            finally:
                ctx.current = None
            ctx.last_used = time.monotonic()
            if cmd.status == "Cancelled":
                return
            cmd.results = _results(done.outputs, done.status)
            cmd.status = "Finished" if done.status == "ok" else "Error"
    except Exception:
        logger.exception("command %s failed", cmd.id)
        cmd.status = "Error"
        cmd.results = CommandResults(resultType="error", cause="internal error; see the service log")
    finally:
        release_thread_loop()


def _results(outputs: list[dict[str, Any]], status: str) -> CommandResults:
    for out in outputs:
        if out["type"] == "error":
            return CommandResults(resultType="error", cause=f"{out['ename']}: {out['evalue']}", summary=out["ename"])
    if status == "timeout":
        return CommandResults(resultType="error", cause="the command ran past its time limit")
    if status != "ok":
        return CommandResults(resultType="error", cause=f"the command ended with {status}")
    for out in reversed(outputs):
        data = out.get("data") or {}
        if TABLE_MIME in data:
            table = data[TABLE_MIME]
            schema = [{"name": n, "type": t} for n, t in zip(table["columns"], table.get("types", []), strict=False)]
            return CommandResults(
                resultType="table", data=table["rows"], schema=schema, truncated=bool(table.get("truncated"))
            )
        if "image/png" in data:
            return CommandResults(resultType="image", data=data["image/png"])
    text = "".join(
        o["text"] if o["type"] == "stream" else str((o.get("data") or {}).get("text/plain", "")) + "\n" for o in outputs
    )
    return CommandResults(resultType="text", data=text.rstrip("\n"))


def get_command_status(svc: Services, principal: Principal, context_id: str, command_id: str, /) -> CommandPublic:
    principal.require(Scope.READ)
    if cluster_contexts.holds(svc, context_id):
        return cluster_contexts.command_status(svc, cluster_contexts.get(svc, principal, context_id), command_id)
    ctx = _get(svc, principal, context_id)
    cmd = ctx.commands.get(command_id)
    if cmd is None:
        raise NotFound("command not found in this context")
    return CommandPublic(id=cmd.id, status=cmd.status, results=cmd.results)


def wait_command(
    svc: Services, principal: Principal, context_id: str, command_id: str, /, *, timeout: float
) -> CommandPublic:
    """The command's status once it has ended, or after ``timeout`` seconds."""
    if cluster_contexts.holds(svc, context_id):
        principal.require(Scope.READ)
        return cluster_contexts.wait(svc, cluster_contexts.get(svc, principal, context_id), command_id, timeout=timeout)
    deadline = time.monotonic() + timeout
    while True:
        status = get_command_status(svc, principal, context_id, command_id)
        if status.status in ("Finished", "Error", "Cancelled") or time.monotonic() >= deadline:
            return status
        time.sleep(0.02)


def _cancel_command(svc: Services, principal: Principal, context_id: str, command_id: str, /) -> CommandPublic:
    principal.require(Scope.WRITE)
    if cluster_contexts.holds(svc, context_id):
        return cluster_contexts.cancel(svc, cluster_contexts.get(svc, principal, context_id), command_id)
    ctx = _get(svc, principal, context_id)
    cmd = ctx.commands.get(command_id)
    if cmd is None:
        raise NotFound("command not found in this context")
    if cmd.status in ("Queued", "Running"):
        running = cmd.status == "Running"
        cmd.status = "Cancelled"
        if running:
            _stop(svc, ctx, cmd.id)
    return CommandPublic(id=cmd.id, status=cmd.status, results=cmd.results)


def _stop(svc: Services, ctx: _Context, command_id: str) -> None:
    """Interrupt until the command has stopped (:meth:`Kernel.interrupt_until`); past the grace
    period the kernel is killed and the context goes with it."""
    grace = svc.settings.sandbox.interrupt_grace_seconds
    if not ctx.kernel.interrupt_until(lambda: ctx.current != command_id, started=ctx.started, seconds=grace):
        logger.warning("command %s did not stop on interrupt; its context is destroyed", command_id)
        with _registry(svc).lock:
            _registry(svc).contexts.pop(ctx.id, None)
        ctx.close()


def _public(ctx: _Context) -> ContextPublic:
    return ContextPublic(
        id=ctx.id, worker=ctx.id.partition("-")[0], language=ctx.language, status="Running", commands=len(ctx.commands)
    )


def _released(fn: Callable[P, T]) -> Callable[P, T]:
    """``fn``, then the event loop jupyter_client made in this thread is closed (threads of a pool
    would otherwise keep one each)."""

    @functools.wraps(fn)
    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        finally:
            release_thread_loop()

    return call


reap_idle = _released(_reap_idle)
close_all = _released(_close_all)
create_context = _released(_create_context)
destroy_context = _released(_destroy_context)
cancel_command = _released(_cancel_command)
