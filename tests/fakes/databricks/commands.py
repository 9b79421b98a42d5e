"""Execution contexts on the fake's clusters: the Command Execution API 1.2 (``/api/1.2/contexts/...``
and ``/api/1.2/commands/...``, camelCase JSON, as the SDK's ``CommandExecutionAPI`` sends it).

A context is a real local kernel (in bubblewrap when it is installed), started by the same code as the
service's kernels; it answers ``Pending`` until the kernel is up, then ``Running``. Its commands run
one after another on a thread of the context: Python as written, SQL through the kernel's ``%sql``
(the shim), with ``spark.sql`` answered by the workspace's engine (``sqlexec``, as for notebook runs).
A SQL ``USE CATALOG x`` sets the context's catalog, and two-part names (``schema.table``) in its later
statements resolve in it, as on a cluster.

Results follow the 1.2 shapes: ``text`` (``data``), ``table`` (``data`` rows, ``schema`` entries
``{name, type, metadata}`` with the Spark type as JSON and ``isJsonSchema``), ``image`` (``fileName``,
a data URL) and ``error`` (``summary`` with HTML around the exception's name, ``cause`` the traceback
with ANSI colours). Code that raised ends ``Finished`` with an ``error`` result, as on a cluster;
cancel moves a command to ``Cancelling`` and, once the kernel is interrupted, ``Cancelled``.
"""

from __future__ import annotations

import json
import queue
import re
import shutil
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from servicetsunami.errors import TsunamiError
from servicetsunami.runs.sandbox import bwrap
from servicetsunami.runs.sandbox.kernels import BRIDGE_SOCKET, Kernel, release_thread_loop, start_kernel
from servicetsunami.runs.sandbox.shim import TABLE_MIME
from servicetsunami.runs.sandbox.wire import BridgeServer
from tests.fakes.databricks.compute import compute_of
from tests.fakes.databricks.notebook_runs import _LIMITS, _Warehouse
from tests.fakes.databricks.state import WorkspaceState

if TYPE_CHECKING:
    from tests.fakes.databricks.server import FakeDatabricks

_USE_CATALOG = re.compile(r"^\s*USE\s+(?:CATALOG\s+)?`?(?P<name>[A-Za-z0-9_]+)`?\s*;?\s*$", re.I)
_COMMAND_SECONDS = 600.0
_SPARK_TYPES = {
    "BOOLEAN": "boolean",
    "TINYINT": "byte",
    "SMALLINT": "short",
    "INT": "integer",
    "BIGINT": "long",
    "FLOAT": "float",
    "DOUBLE": "double",
    "STRING": "string",
    "BINARY": "binary",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP_NTZ": "timestamp_ntz",
    "VOID": "void",
}


@dataclass
class FakeCommand:
    id: str
    code: str
    language: str
    status: str = "Queued"
    results: dict[str, Any] | None = None


@dataclass
class FakeContext:
    id: str
    cluster_id: str
    language: str
    status: str = "Pending"
    catalog: str | None = None
    kernel: Kernel | None = None
    server: BridgeServer | None = None
    commands: dict[str, FakeCommand] = field(default_factory=dict)
    queue: queue.Queue[FakeCommand | None] = field(default_factory=queue.Queue)
    running: str | None = None
    started: threading.Event = field(default_factory=threading.Event)  # the kernel began the running one
    finished: threading.Event = field(default_factory=threading.Event)  # its thread has closed the kernel

    def close(self) -> None:
        """Destroy the context: its thread stops after the running command (interrupted as a cancel
        does) and closes the kernel itself, as the only thread using the kernel's sockets; a kernel
        still busy after 10 s is killed."""
        self.status = "Destroyed"
        self.queue.put(None)
        if self.kernel is not None and not self.kernel.interrupt_until(
            self.finished.is_set, started=self.started, seconds=10
        ):
            self.kernel.kill()
        self.finished.wait(10)


def contexts_of(state: WorkspaceState) -> dict[str, FakeContext]:
    with state.lock:
        if state.contexts is None:
            state.contexts = {}
        found: dict[str, FakeContext] = state.contexts
        return found


class _ContextWarehouse(_Warehouse):
    """The kernel's bridge: statements qualified with the context's catalog (``USE CATALOG``)."""

    def __init__(self, state: WorkspaceState, fake: FakeDatabricks, ctx: FakeContext) -> None:
        super().__init__(state, fake)
        self._ctx = ctx

    def __call__(self, header: dict[str, Any], payload: bytes) -> tuple[dict[str, Any], bytes]:
        if header.get("op") == "sql" and self._ctx.catalog:
            header = {**header, "statement": qualified(str(header.get("statement", "")), self._ctx.catalog)}
        return super().__call__(header, payload)


def qualified(sql: str, catalog: str) -> str:
    """``schema.table`` names as ``catalog.schema.table`` (what a cluster's current catalog does)."""
    try:
        tree = sqlglot.parse_one(sql, read="databricks")
    except sqlglot.errors.ParseError:
        return sql  # the warehouse reports it
    for table in tree.find_all(exp.Table):
        if table.args.get("db") and not table.args.get("catalog"):
            table.set("catalog", exp.to_identifier(catalog))
    return tree.sql(dialect="databricks")


def _error12(status: int, message: str) -> JSONResponse:
    """The 1.2 API's error body (``{"error": ...}``; the SDK reads it as the message)."""
    return JSONResponse({"error": message}, status_code=status)


def routes(handler: Any, fake: FakeDatabricks) -> list[Route]:
    def create(state: WorkspaceState, request: Request, body: bytes) -> Response:
        req = json.loads(body or b"{}")
        cluster_id, language = str(req.get("clusterId", "")), str(req.get("language", "python"))
        cluster = compute_of(state).clusters.get(cluster_id)
        if cluster is None:
            return _error12(400, f"Cluster {cluster_id} does not exist")
        if cluster.state in ("PENDING", "RESTARTING"):  # the SDK retries this one while the cluster starts
            return _error12(400, f"ClusterNotReadyException: cluster {cluster_id} is {cluster.state}")
        if cluster.state not in ("RUNNING", "RESIZING"):
            return _error12(400, f"Cluster {cluster_id} is {cluster.state}; execution contexts need a running cluster")
        if language not in ("python", "sql"):
            return _error12(400, f"the fake runs python and sql contexts, not {language}")
        ctx = FakeContext(uuid.uuid4().hex[:19], cluster_id, language)
        contexts_of(state)[ctx.id] = ctx
        threading.Thread(target=serve, args=(state, ctx), daemon=True, name=f"fake-context-{ctx.id[:6]}").start()
        return JSONResponse({"id": ctx.id})

    def serve(state: WorkspaceState, ctx: FakeContext) -> None:
        """Start the kernel, run the context's commands in order until it is destroyed, then close it."""
        workdir = Path(tempfile.mkdtemp(prefix="fdbx-ctx-"))
        ctx.server = BridgeServer(
            workdir / BRIDGE_SOCKET, _ContextWarehouse(state, fake, ctx), uid=None, max_payload=1 << 30
        )
        try:
            ctx.kernel = start_kernel(
                workdir,
                env={"TSUNAMI_NOTEBOOK_LANGUAGE": "python", "TSUNAMI_PARAMETERS": "{}"},
                sandboxed=bwrap.probe(None) is None,
                uid=None,
                limits=_LIMITS,
                hide=(state.root,),
                start_seconds=60,
            )
            if ctx.status == "Destroyed":
                return
            ctx.status = "Running"
            while (cmd := ctx.queue.get()) is not None:
                if cmd.status == "Queued":
                    run(state, ctx, cmd)
        except TsunamiError:
            ctx.status = "Error"
        finally:
            if ctx.kernel is not None:
                ctx.kernel.close()
            ctx.server.close()
            shutil.rmtree(workdir, ignore_errors=True)
            release_thread_loop()
            ctx.finished.set()

    def run(state: WorkspaceState, ctx: FakeContext, cmd: FakeCommand) -> None:
        assert ctx.kernel is not None
        cmd.status = "Running"
        use = _USE_CATALOG.match(cmd.code) if cmd.language == "sql" else None
        if use:
            if use.group("name") not in state.catalogs:
                cmd.results = {
                    "resultType": "error",
                    "summary": f"[NO_SUCH_CATALOG_EXCEPTION] Catalog '{use.group('name')}' was not found.",
                    "cause": "AnalysisException",
                }
            else:
                ctx.catalog = use.group("name")
                cmd.results = {"resultType": "table", "data": [], "schema": [], "isJsonSchema": True}
            cmd.status = "Finished"
            return
        code = cmd.code if cmd.language == "python" else "%sql\n" + cmd.code
        ctx.started.clear()
        ctx.running = cmd.id
        try:
            done = ctx.kernel.execute(code, timeout=_COMMAND_SECONDS, started=ctx.started)
        finally:
            ctx.running = None
            ctx.started.clear()
        if cmd.status == "Cancelling":
            cmd.status = "Cancelled"
            cmd.results = {"resultType": "error", "summary": "Command cancelled", "cause": "CommandCancelledException"}
            return
        cmd.results = results_of(done.outputs, done.status)
        cmd.status = "Finished"

    def context_status(state: WorkspaceState, request: Request, body: bytes) -> Response:
        ctx = contexts_of(state).get(request.query_params.get("contextId", ""))
        if ctx is None or ctx.status == "Destroyed":
            return _error12(404, f"Context {request.query_params.get('contextId')} does not exist")
        return JSONResponse({"id": ctx.id, "status": ctx.status})

    def destroy(state: WorkspaceState, request: Request, body: bytes) -> Response:
        req = json.loads(body or b"{}")
        ctx = contexts_of(state).pop(str(req.get("contextId", "")), None)
        if ctx is not None:
            for cmd in ctx.commands.values():
                if cmd.status in ("Queued", "Running"):
                    cmd.status = "Cancelling"
            ctx.close()
        return JSONResponse({"id": req.get("contextId")})

    def execute(state: WorkspaceState, request: Request, body: bytes) -> Response:
        req = json.loads(body or b"{}")
        ctx = contexts_of(state).get(str(req.get("contextId", "")))
        if ctx is None or ctx.status == "Destroyed":
            return _error12(404, f"Context {req.get('contextId')} does not exist")
        if ctx.status != "Running":
            return _error12(400, f"ContextNotReadyException: context {ctx.id} is {ctx.status}")
        language = str(req.get("language") or ctx.language)
        if language not in ("python", "sql"):
            return _error12(400, f"the fake runs python and sql commands, not {language}")
        cmd = FakeCommand(uuid.uuid4().hex, str(req.get("command", "")), language)
        ctx.commands[cmd.id] = cmd
        ctx.queue.put(cmd)
        return JSONResponse({"id": cmd.id})

    def command(state: WorkspaceState, params: Any) -> tuple[FakeContext, FakeCommand] | Response:
        ctx = contexts_of(state).get(str(params.get("contextId", "")))
        if ctx is None or ctx.status == "Destroyed":
            return _error12(404, f"Context {params.get('contextId')} does not exist")
        cmd = ctx.commands.get(str(params.get("commandId", "")))
        if cmd is None:
            return _error12(404, f"Command {params.get('commandId')} does not exist")
        return ctx, cmd

    def command_status(state: WorkspaceState, request: Request, body: bytes) -> Response:
        found = command(state, request.query_params)
        if isinstance(found, Response):
            return found
        _, cmd = found
        out: dict[str, Any] = {"id": cmd.id, "status": cmd.status}
        if cmd.results is not None:
            out["results"] = cmd.results
        return JSONResponse(out)

    def cancel(state: WorkspaceState, request: Request, body: bytes) -> Response:
        found = command(state, json.loads(body or b"{}"))
        if isinstance(found, Response):
            return found
        ctx, cmd = found
        if cmd.status == "Queued":
            cmd.status = "Cancelled"
            cmd.results = {"resultType": "error", "summary": "Command cancelled", "cause": "CommandCancelledException"}
        elif cmd.status == "Running":
            cmd.status = "Cancelling"
            threading.Thread(target=interrupt, args=(ctx, cmd), daemon=True).start()
        return JSONResponse({"id": cmd.id})

    def interrupt(ctx: FakeContext, cmd: FakeCommand) -> None:
        """Interrupt until the command has stopped: once the kernel has begun it (an interrupt landing
        before is lost), then again after each second without effect (a kernel handles a second one
        sent at once after the first, and a late one would reach the next command)."""
        if ctx.kernel is not None:
            ctx.kernel.interrupt_until(lambda: ctx.running != cmd.id, started=ctx.started, seconds=_COMMAND_SECONDS)

    return [
        Route("/api/1.2/contexts/create", handler(create), methods=["POST"]),
        Route("/api/1.2/contexts/status", handler(context_status)),
        Route("/api/1.2/contexts/destroy", handler(destroy), methods=["POST"]),
        Route("/api/1.2/commands/execute", handler(execute), methods=["POST"]),
        Route("/api/1.2/commands/status", handler(command_status)),
        Route("/api/1.2/commands/cancel", handler(cancel), methods=["POST"]),
    ]


def results_of(outputs: list[dict[str, Any]], status: str) -> dict[str, Any]:
    """A finished command's ``results`` from what its kernel showed, in the 1.2 shapes."""
    for out in outputs:
        if out["type"] == "error":
            return {
                "resultType": "error",
                "summary": f"<span class='ansi-red-fg'>{out['ename']}</span>: {out['evalue']}",
                "cause": "\n".join(out.get("traceback") or [f"{out['ename']}: {out['evalue']}"]),
            }
    if status != "ok":
        return {"resultType": "error", "summary": f"the command ended {status}", "cause": status}
    for out in reversed(outputs):
        data = out.get("data") or {}
        if TABLE_MIME in data:
            table = data[TABLE_MIME]
            schema = [
                {"name": name, "type": json.dumps(spark_type(kind)), "metadata": "{}"}
                for name, kind in zip(table["columns"], table.get("types", []), strict=False)
            ]
            return {
                "resultType": "table",
                "data": table["rows"],
                "schema": schema,
                "truncated": bool(table.get("truncated")),
                "isJsonSchema": True,
            }
        if "image/png" in data:
            return {"resultType": "image", "fileName": f"data:image/png;base64,{data['image/png']}"}
    text = "".join(
        o["text"] if o["type"] == "stream" else str((o.get("data") or {}).get("text/plain", "")) + "\n" for o in outputs
    )
    return {"resultType": "text", "data": text.rstrip("\n")}


def spark_type(sql_type: str) -> Any:
    """A Databricks SQL type name as Spark writes it in a JSON schema."""
    name = sql_type.upper()
    if name in _SPARK_TYPES:
        return _SPARK_TYPES[name]
    if name.startswith("DECIMAL"):
        return name.lower().replace(" ", "")
    return "string"
