"""Notebook runs: a notebook executed with parameters by nbclient in a sandboxed kernel, as a run of
kind ``notebook_run``.

Parameters go into a cell inserted after the cell tagged ``parameters`` (papermill's convention;
at the top when there is none) and into ``dbutils.widgets``. Cells run in order; progress counts
cells; each cell's status and time are kept. The executed notebook, with its outputs, is kept with
the run (also when a cell fails: the error names the cell). ``dbutils.notebook.exit(value)`` stops
the notebook and is the run's result. Cancel (and the run's timeout) interrupts the kernel, and
kills it when it does not stop within ``sandbox.interrupt_grace_seconds``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError
from nbformat import NotebookNode
from pydantic import BaseModel, Field

from servicetsunami.errors import Cancelled, CodeFailed, InvalidInput, NotFound, SandboxUnavailable
from servicetsunami.runs.local.processes import Limits
from servicetsunami.runs.sandbox import bwrap
from servicetsunami.runs.sandbox.kernels import BRIDGE_SOCKET, Kernel, release_thread_loop, start_kernel
from servicetsunami.runs.sandbox.shim import EXIT_MIME, TABLE_MIME
from servicetsunami.runs.sandbox.wire import BridgeServer
from servicetsunami.services.notebooks import source_format as sf
from servicetsunami.services.notebooks.bridge import Bridge
from servicetsunami.services.notebooks.notebooks import load, resolve
from servicetsunami.services.runs import service as runs
from servicetsunami.services.runs.context import RunContext
from servicetsunami.services.runs.kinds import RunKind, register
from servicetsunami.services.runs.model import RunPublic
from servicetsunami.store.repositories import notebooks as notebooks_repo
from servicetsunami.tenancy import Principal, Scope

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

logger = logging.getLogger(__name__)

KIND = "notebook_run"
_PARAM_NAME_MAX = 100


class CellRun(BaseModel):
    index: int
    cell_type: str
    title: str | None = None
    status: str = Field(description="succeeded, failed, skipped (after an exit or a failure) or not_run")
    seconds: float | None = None
    text: str = Field("", description="What the cell printed and returned, as text")
    tables: list[dict[str, Any]] = Field(default_factory=list, description="Tables display() showed")
    error: str | None = None


class NotebookRunPublic(BaseModel):
    run: RunPublic
    notebook_id: str | None
    exit_value: str | None = Field(None, description="The value given to dbutils.notebook.exit")
    cells: list[CellRun] = Field(default_factory=list)
    executed_notebook: dict[str, Any] | None = Field(None, description="The executed notebook (Jupyter JSON)")


# -- where code runs -------------------------------------------------------------------------------


MULTI_TENANT_NEEDS_ROOT = (
    "the service does not run as root, so tenant code would keep the service's own uid (in a user "
    "namespace) instead of a separate unprivileged one"
)


def sandbox_mode(svc: Services) -> bool:
    """True when code runs in bubblewrap, False when the operator allowed running without it
    (single-user mode only); :class:`SandboxUnavailable` with the reason otherwise.

    Multi-tenant mode accepts only the full sandbox: bubblewrap started by root, the code switched
    to ``sandbox.uid``. The weaker one (a user namespace keeping the service's uid, what an
    unprivileged service gets) would leave the code the rights of the service's uid on anything
    bubblewrap does not hide, so it is refused too (fail closed, DESIGN.md section 11)."""
    root = bwrap.running_as_root()
    reason = bwrap.probe(svc.settings.sandbox.uid if root else None)
    if reason is None and svc.settings.multi_tenant and not root:
        reason = MULTI_TENANT_NEEDS_ROOT
    if reason is None:
        return True
    if svc.settings.multi_tenant:
        raise SandboxUnavailable(f"code cannot run: {reason}; multi-tenant mode never runs code without the sandbox")
    if not svc.settings.sandbox.unsandboxed:
        raise SandboxUnavailable(
            f"code cannot run: {reason}; install bubblewrap, or (single-user mode only) set "
            "TSUNAMI_SANDBOX__UNSANDBOXED=true to run code with the service's rights"
        )
    return False


def limits(svc: Services) -> Limits:
    s = svc.settings.sandbox
    mb = 1024 * 1024
    return Limits(
        memory_bytes=s.memory_mb * mb, cpu_seconds=s.cpu_seconds, processes=s.processes, file_bytes=s.file_mb * mb
    )


def hidden_paths(svc: Services) -> tuple[Path, ...]:
    """Folders tenant code must not see: the data folder, the lakehouse, the SQLite store's folder."""
    paths = [svc.settings.resolved_home, svc.settings.resolved_lakehouse_root, sandbox_root(svc)]
    url = svc.settings.resolved_database_url
    if url.startswith("sqlite:///"):
        paths.append(Path(url.removeprefix("sqlite:///")).resolve().parent)
    return tuple(paths)


def sandbox_root(svc: Services) -> Path:
    """Where sandbox folders are made: ``<home>/sandbox``, or a short private folder in the system's
    temporary folder when that path is too long for the unix sockets inside (108 bytes at most);
    that one is removed when its last kernel closes."""
    root = svc.settings.resolved_home / "sandbox"
    if len(str(root)) > 60:
        digest = hashlib.sha256(str(svc.settings.resolved_home).encode()).hexdigest()[:10]
        root = Path(tempfile.gettempdir()) / f"tsunami-{digest}"
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(root, 0o711)  # the sandbox uid passes through to its own folder, and lists nothing
    return root


def open_kernel(
    svc: Services, principal: Principal, name: str, /, *, folder: str = "/", env: dict[str, str] | None = None
) -> tuple[Kernel, BridgeServer]:
    """A kernel in its own folder under ``<home>/sandbox`` with a bridge bound to ``principal``."""
    sandboxed = sandbox_mode(svc)
    try:
        workdir = sandbox_root(svc) / name
        workdir.mkdir()
    except FileNotFoundError:  # the shared temporary root was just removed as empty: make it again
        workdir = sandbox_root(svc) / name
        workdir.mkdir()
    uid = svc.settings.sandbox.uid if sandboxed and bwrap.running_as_root() else None
    server = BridgeServer(
        workdir / BRIDGE_SOCKET,
        Bridge(svc, principal, folder=folder),
        uid=uid,
        max_payload=svc.settings.query.max_bytes,
    )
    try:
        kernel = start_kernel(
            workdir,
            env=env or {},
            sandboxed=sandboxed,
            uid=uid,
            limits=limits(svc),
            hide=hidden_paths(svc),
            start_seconds=svc.settings.sandbox.start_seconds,
        )
    except BaseException:
        server.close()
        raise
    return kernel, server


# -- the run ---------------------------------------------------------------------------------------


def _execute(svc: Services, ctx: RunContext) -> dict[str, Any]:
    if svc.engine.capabilities.workspace_notebooks:
        from servicetsunami.services.notebooks.remote import execute_remote

        return execute_remote(svc, ctx)
    principal = ctx.principal
    notebook_id = str(ctx.params["notebook_id"])
    facts, nb = load(svc, principal, notebook_id, version=ctx.params.get("version"))
    params = {str(k): str(v) for k, v in (ctx.params.get("parameters") or {}).items()}
    language = sf.notebook_language(nb)
    if language not in ("python", "sql"):
        raise InvalidInput(f"{language} notebooks are stored but not run here (python and sql run)")
    executed = inject_parameters(nb, params, language=language)
    cells = executed.cells
    total = sum(1 for c in cells if c.cell_type == "code")
    folder = facts.path.rsplit("/", 1)[0] or "/"
    env = {
        "TSUNAMI_NOTEBOOK_LANGUAGE": language,
        "TSUNAMI_PARAMETERS": json.dumps(params),
        "TSUNAMI_NOTEBOOK_PATH": facts.path,
    }
    ctx.progress(done=0, total=total, unit="cells", message="starting the kernel", force=True)
    kernel, server = open_kernel(svc, principal, "r-" + ctx.run_id.replace("-", ""), folder=folder, env=env)
    stopper = _Stopper(kernel, svc.settings.sandbox.interrupt_grace_seconds)
    ctx.on_cancel(stopper.stop)
    statuses: dict[int, dict[str, Any]] = {}
    exit_value: str | None = None

    def before(index: int, done: int) -> None:
        ctx.raise_if_cancelled()
        ctx.progress(done=done, message=f"cell {index + 1}")

    try:
        done, exit_value = run_cells(
            kernel, executed, statuses, before=before, stopped=lambda: ctx.cancelled or stopper.stopped
        )
        ctx.progress(done=done, message="done", force=True)
    finally:
        stopper.finish()
        server.close()
        kernel.close()
        release_thread_loop()
        _keep(svc, principal, ctx.run_id, executed, statuses)
    return {
        "notebook_id": notebook_id,
        "notebook_version": facts.version,
        "exit_value": exit_value,
        "cells_run": len(statuses),
        "cells": [{"index": i, **s} for i, s in sorted(statuses.items())],
    }


def run_cells(
    kernel: Kernel,
    nb: NotebookNode,
    statuses: dict[int, dict[str, Any]],
    /,
    *,
    before: Callable[[int, int], None],
    stopped: Callable[[], bool],
) -> tuple[int, str | None]:
    """Execute the code cells of ``nb`` in order in ``kernel`` (outputs kept in ``nb``, each cell's
    status and time in ``statuses``) until the end or ``dbutils.notebook.exit``; returns the number of
    cells run and the exit value. ``before(index, done)`` is called before each cell (it may raise to
    stop); a cell that fails raises :class:`CodeFailed` naming it, or :class:`Cancelled` when
    ``stopped()`` says the kernel was interrupted on purpose."""
    cells = nb.cells
    client = NotebookClient(nb, km=kernel.km, timeout=None, allow_errors=False, record_timing=True)
    client.kc = kernel.kc  # the kernel's own client: nbclient would open a second one and leave it open
    done = 0
    exit_value: str | None = None
    with client.setup_kernel():
        for index, cell in enumerate(cells):
            if cell.cell_type != "code":
                continue
            before(index, done)
            started = time.monotonic()
            try:
                client.execute_cell(cell, index)
            except CellExecutionError as exc:
                if exc.ename == "NotebookExit":  # dbutils.notebook.exit: the notebook ends here
                    statuses[index] = {"status": "succeeded", "seconds": round(time.monotonic() - started, 3)}
                    return done + 1, exc.evalue
                statuses[index] = {"status": "failed", "seconds": round(time.monotonic() - started, 3)}
                if stopped():
                    raise Cancelled("the run was canceled") from None
                raise CodeFailed(_cell_error(cells, index, exc)) from None
            except DeadKernelError as exc:
                statuses[index] = {"status": "failed", "seconds": round(time.monotonic() - started, 3)}
                if stopped():
                    raise Cancelled("the run was canceled") from None
                raise CodeFailed(_cell_error(cells, index, exc)) from None
            statuses[index] = {"status": "succeeded", "seconds": round(time.monotonic() - started, 3)}
            done += 1
            exit_value = _exit_value(cell)
            if exit_value is not None:
                break
    return done, exit_value


class _Stopper:
    """Interrupt the kernel; kill it if it is still busy after the grace period."""

    def __init__(self, kernel: Kernel, grace: float) -> None:
        self._kernel = kernel
        self._grace = grace
        self._done = threading.Event()
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True
        self._kernel.interrupt()
        threading.Thread(target=self._kill_later, daemon=True).start()

    def _kill_later(self) -> None:
        if not self._done.wait(self._grace):
            self._kernel.kill()

    def finish(self) -> None:
        self._done.set()


def inject_parameters(nb: NotebookNode, params: dict[str, str], /, *, language: str) -> NotebookNode:
    """A copy of ``nb`` with a cell setting ``params`` after the cell tagged ``parameters``."""
    out = copy.deepcopy(nb)
    for cell in out.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    if not params:
        return out
    for name in params:
        if not name.isidentifier() or len(name) > _PARAM_NAME_MAX:
            raise InvalidInput(f"parameter name {name!r} must be a Python identifier (letters, digits, _)")
    lines = [f"dbutils.widgets._set({params!r})"] + [f"{k} = {v!r}" for k, v in params.items()]
    source = ("%python\n" if language == "sql" else "") + "\n".join(lines)
    cell = sf._nbf.v4.new_code_cell(source)
    cell.metadata["tags"] = ["injected-parameters"]
    cell["id"] = "injected-parameters"
    at = next((i + 1 for i, c in enumerate(out.cells) if "parameters" in (c.get("metadata", {}).get("tags") or [])), 0)
    out.cells.insert(at, cell)
    return out


def _exit_value(cell: NotebookNode) -> str | None:
    for output in cell.get("outputs", []):
        data = output.get("data", {})
        if EXIT_MIME in data:
            return str(data[EXIT_MIME].get("value"))
    return None


def _cell_error(cells: list[NotebookNode], index: int, exc: Exception) -> str:
    """The error of a cell, named by its number in the notebook as stored (the injected parameters
    cell is not counted) and its title."""
    title = (cells[index].get("metadata", {}).get(sf.META) or {}).get("title")
    injected = [i for i, c in enumerate(cells) if c.get("id") == "injected-parameters"]
    number = index + 1 - sum(1 for i in injected if i < index)
    where = "the parameters cell" if index in injected else f"cell {number}" + (f" ({title})" if title else "")
    if isinstance(exc, CellExecutionError):
        return f"{where} failed: {exc.ename}: {exc.evalue}"[:2000]
    return f"{where} failed: the kernel died (out of memory, CPU time or processes?)"


def _keep(
    svc: Services, principal: Principal, run_id: str, nb: NotebookNode, statuses: dict[int, dict[str, Any]]
) -> None:
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.metadata.setdefault(sf.META, {})["status"] = statuses.get(index, {"status": "not_run"})
    try:
        with svc.store.session(write_lock=True) as session:
            notebooks_repo.save_run_output(session, run_id, tenant_id=principal.tenant_id, content=sf.to_ipynb(nb))
    except Exception:
        logger.exception("the executed notebook of run %s could not be kept", run_id)


register(RunKind(KIND, _execute, max_parallel=lambda settings: settings.sandbox.max_parallel))


# -- what the doors call ---------------------------------------------------------------------------


def run_notebook(
    svc: Services,
    principal: Principal,
    notebook_id: str,
    /,
    *,
    parameters: dict[str, Any] | None = None,
    version: int | None = None,
    timeout_seconds: float | None = None,
    parent_id: str | None = None,
) -> str:
    """Queue a run of the notebook (its newest version unless ``version``); returns the run id.
    Refuses at once, with the reason, when code cannot run here. ``parent_id`` links it to the run
    it belongs to (a job run's notebook task)."""
    principal.require(Scope.WRITE)
    notebook_id = resolve(svc, principal, notebook_id)
    facts, _ = load(svc, principal, notebook_id, version=version)
    params = dict(parameters or {})
    for name, value in params.items():
        if not isinstance(name, str) or not name.isidentifier() or len(name) > _PARAM_NAME_MAX:
            raise InvalidInput(f"parameter name {name!r} must be a Python identifier (letters, digits, _)")
        if not isinstance(value, str | int | float | bool):
            raise InvalidInput(f"parameter {name} must be text or a number")
    if not svc.engine.capabilities.workspace_notebooks:  # on Databricks the workspace runs it
        sandbox_mode(svc)
    limit = svc.settings.sandbox.notebook_timeout_seconds
    if timeout_seconds is not None:
        if timeout_seconds <= 0:
            raise InvalidInput("timeout_seconds must be positive")
        limit = min(limit, timeout_seconds)
    return runs.submit(
        svc,
        principal,
        KIND,
        params={
            "notebook_id": notebook_id,
            "version": facts.version,
            "parameters": {k: str(v) for k, v in params.items()},
        },
        resource_id=notebook_id,
        parent_id=parent_id,
        timeout_seconds=limit,
    )


def get_notebook_run(
    svc: Services, principal: Principal, run_id: str, /, *, include_notebook: bool = False
) -> NotebookRunPublic:
    run = runs.get_run(svc, principal, run_id)
    if run.kind != KIND:
        raise NotFound("notebook run not found")
    return _public(svc, principal, run, include_notebook=include_notebook)


def _public(svc: Services, principal: Principal, run: RunPublic, *, include_notebook: bool) -> NotebookRunPublic:
    with svc.store.session() as session:
        text = notebooks_repo.run_output(session, run.run_id, tenant_id=principal.tenant_id)
    cells: list[CellRun] = []
    nb = None
    if text is not None:
        nb = sf.from_ipynb(text)
        cells = [_cell_run(i, c) for i, c in enumerate(nb.cells)]
    result = run.result or {}
    return NotebookRunPublic(
        run=run,
        notebook_id=run.resource_id,
        exit_value=result.get("exit_value"),
        cells=cells,
        executed_notebook=json.loads(sf.to_ipynb(nb)) if include_notebook and nb is not None else None,
    )


def _cell_run(index: int, cell: NotebookNode) -> CellRun:
    own = cell.get("metadata", {}).get(sf.META) or {}
    status = own.get("status") or {}
    texts: list[str] = []
    tables: list[dict[str, Any]] = []
    error = None
    for output in cell.get("outputs", []):
        kind = output.get("output_type")
        if kind == "stream":
            texts.append(sf._text(output.get("text", "")))
        elif kind == "error":
            error = f"{output.get('ename')}: {output.get('evalue')}"
        else:
            data = output.get("data", {})
            if TABLE_MIME in data:
                tables.append(dict(data[TABLE_MIME]))
            elif EXIT_MIME in data:
                continue
            elif "text/plain" in data:
                texts.append(sf._text(data["text/plain"]) + "\n")
    return CellRun(
        index=index,
        cell_type=cell.cell_type,
        title=own.get("title"),
        status=status.get("status", "not_run") if cell.cell_type == "code" else "skipped",
        seconds=status.get("seconds"),
        text="".join(texts)[-20_000:],
        tables=tables,
        error=error,
    )


def wait_notebook_run(svc: Services, principal: Principal, run_id: str, /, *, timeout: float) -> NotebookRunPublic:
    runs.wait_for_run(svc, principal, run_id, timeout=timeout)
    return get_notebook_run(svc, principal, run_id)


def cancel_notebook_run(svc: Services, principal: Principal, run_id: str, /) -> NotebookRunPublic:
    get_notebook_run(svc, principal, run_id)
    runs.cancel_run(svc, principal, run_id, wait_seconds=svc.settings.sandbox.interrupt_grace_seconds + 10)
    return get_notebook_run(svc, principal, run_id)
