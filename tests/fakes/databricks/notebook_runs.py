"""One-time notebook runs on the fake (Jobs API 2.2 ``runs/submit`` and ``runs/get-output``).

``runs/submit`` takes ``notebook_task`` tasks (``notebook_path`` in the workspace tree of
``workspace.py``, ``base_parameters``) and runs the notebook for real: its Databricks source is read
into cells, the parameters injected (readable with ``dbutils.widgets.get``), and the cells executed in
a local kernel, in bubblewrap when it is installed, by the same code as local notebook runs
(``services/notebooks/runs.py``). The kernel's ``spark.sql`` is answered by the workspace's engine
(``sqlexec``, as a warehouse would). A submitted run is a ``JobRun`` of ``jobs.py`` (its ``jobs_of``
state), so ``runs/get``, ``runs/list`` and ``runs/cancel`` see it; cancel interrupts the kernel.
``idempotency_token`` gives the same run for the same token. ``runs/get-output`` of a task run gives
``notebook_output.result`` (the ``dbutils.notebook.exit`` value) or ``error``; of a run with tasks it
answers ``INVALID_PARAMETER_VALUE`` as the service does.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from servicetsunami.engines.types import sql_type
from servicetsunami.errors import Cancelled, CodeFailed, TsunamiError
from servicetsunami.runs.local.processes import Limits
from servicetsunami.runs.sandbox import bwrap
from servicetsunami.runs.sandbox.kernels import BRIDGE_SOCKET, release_thread_loop, start_kernel
from servicetsunami.runs.sandbox.wire import BridgeServer
from servicetsunami.services.notebooks import source_format as sf
from servicetsunami.services.notebooks.runs import inject_parameters, run_cells
from tests.fakes.databricks import sqlexec, workspace
from tests.fakes.databricks.jobs import JobRun, JobsState, TaskRun, jobs_of
from tests.fakes.databricks.state import Statement, WorkspaceState

if TYPE_CHECKING:
    from tests.fakes.databricks.server import FakeDatabricks

_OUTPUTS = "notebook_outputs"  # key in WorkspaceState.jobs: task run id -> (exit value, error)
_LIMITS = Limits(memory_bytes=2 << 30, cpu_seconds=300, processes=256, file_bytes=1 << 30)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message}, status_code=status)


def _now() -> int:
    return int(time.time() * 1000)


def _outputs(state: WorkspaceState) -> dict[int, tuple[str | None, str | None]]:
    with state.lock:
        found: dict[int, tuple[str | None, str | None]] = state.jobs.setdefault(_OUTPUTS, {})
        return found


class _Warehouse:
    """The kernel's bridge: ``sql`` answered by the workspace's engine; nothing else is offered."""

    def __init__(self, state: WorkspaceState, fake: FakeDatabricks) -> None:
        self._state = state
        self._fake = fake

    def __call__(self, header: dict[str, Any], payload: bytes) -> tuple[dict[str, Any], bytes]:
        if header.get("op") != "sql":
            return {
                "ok": False,
                "code": "not_supported",
                "message": f"the fake answers sql only, not {header.get('op')}",
            }, b""
        text = str(header.get("statement", ""))
        stmt = Statement(uuid.uuid4().hex, text, "INLINE", "JSON_ARRAY", header.get("max_rows"), None)
        self._fake.statements_seen.append(text)
        try:
            table, truncated = sqlexec.execute(self._state, stmt, timeout=self._fake.statement_timeout)
        except (sqlexec.StatementError, sqlexec.Unsupported) as exc:
            return {"ok": False, "code": "invalid_sql", "message": str(exc)}, b""
        limit = header.get("max_rows")
        if isinstance(limit, int) and table.num_rows > limit:
            table, truncated = table.slice(0, limit), True
        columns = [{"name": f.name, "type": sql_type(f.type)} for f in table.schema]
        rows = [list(r.values()) for r in table.to_pylist()]
        return {"ok": True, "columns": columns, "rows": rows, "truncated": truncated, "hint": None}, b""


def _clean(workdir: Path) -> None:
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.with_name(workdir.name + ".log").unlink(missing_ok=True)


def routes(handler: Any, fake: FakeDatabricks) -> list[Route]:
    def submit(state: WorkspaceState, request: Request, body: bytes) -> Response:
        req = json.loads(body or b"{}")
        tasks = req.get("tasks") or []
        if not tasks or any("notebook_task" not in t for t in tasks):
            return _error(400, "INVALID_PARAMETER_VALUE", "the fake submits runs of notebook_task tasks only")
        js = jobs_of(state)
        token = req.get("idempotency_token")
        with js.lock:
            if token and token in js.tokens:
                return JSONResponse({"run_id": js.tokens[token]})
            settings = {"name": req.get("run_name") or "Untitled", "tasks": tasks}
            run = JobRun(
                js.new_id(), js.new_id(), 1, settings, {}, {t["task_key"]: TaskRun(t, js.new_id()) for t in tasks}
            )
            js.runs[run.run_id] = run
            if token:
                js.tokens[token] = run.run_id
        threading.Thread(target=execute, args=(state, js, run), daemon=True).start()
        return JSONResponse({"run_id": run.run_id})

    def execute(state: WorkspaceState, js: JobsState, run: JobRun) -> None:
        run.life = "RUNNING"
        for task in run.tasks.values():
            if run.cancel.is_set():
                task.life, task.result, task.message = "TERMINATED", "CANCELED", "The run was canceled"
                continue
            task.life, task.start = "RUNNING", _now()
            exit_value, problem = run_notebook(state, run, task.spec["notebook_task"])
            _outputs(state)[task.run_id] = (exit_value, problem)
            task.end = _now()
            if run.cancel.is_set():
                task.result, task.message = "CANCELED", "The run was canceled"
            else:
                task.result, task.message = ("FAILED", problem) if problem else ("SUCCESS", "")
            task.life = "TERMINATED"
        results = [t.result for t in run.tasks.values()]
        run.result = (
            "CANCELED" if run.cancel.is_set() else "SUCCESS" if all(r == "SUCCESS" for r in results) else "FAILED"
        )
        run.message = next((t.message for t in run.tasks.values() if t.message), "")
        run.end = _now()
        run.life = "TERMINATED"

    def run_notebook(state: WorkspaceState, run: JobRun, spec: dict[str, Any]) -> tuple[str | None, str | None]:
        path = str(spec.get("notebook_path", ""))
        found = workspace.lookup(state, path)
        if found is None or found.object_type != "NOTEBOOK":
            return None, f"RESOURCE_NOT_FOUND: Unable to access the notebook {path}: it does not exist."
        language = "sql" if found.language == "SQL" else "python"
        try:
            nb = sf.read_any(found.content.decode("utf-8"), format="source", language=language)
            params = {str(k): str(v) for k, v in (spec.get("base_parameters") or {}).items()}
            executed = inject_parameters(nb, params, language=language)
        except TsunamiError as exc:
            return None, f"{exc.code}: {exc.message}"
        workdir = Path(tempfile.mkdtemp(prefix="fdbx-"))
        server = BridgeServer(workdir / BRIDGE_SOCKET, _Warehouse(state, fake), uid=None, max_payload=1 << 30)
        try:
            env = {"TSUNAMI_NOTEBOOK_LANGUAGE": language, "TSUNAMI_PARAMETERS": json.dumps(params)}
            kernel = start_kernel(
                workdir,
                env=env,
                sandboxed=bwrap.probe(None) is None,
                uid=None,
                limits=_LIMITS,
                hide=(state.root,),
                start_seconds=60,
            )
        except TsunamiError as exc:
            server.close()
            _clean(workdir)
            return None, f"{exc.code}: {exc.message}"
        run.statement = Statement("", "", "INLINE", "JSON_ARRAY", None, None, interrupt=kernel.interrupt)

        def before(index: int, done: int) -> None:
            if run.cancel.is_set():  # canceled while the kernel was starting, or between cells
                raise Cancelled("The run was canceled")

        try:
            _, exit_value = run_cells(kernel, executed, {}, before=before, stopped=run.cancel.is_set)
            return exit_value, None
        except (CodeFailed, Cancelled) as exc:
            return None, exc.message
        finally:
            run.statement = None
            server.close()
            kernel.close()
            release_thread_loop()
            _clean(workdir)

    def get_output(state: WorkspaceState, request: Request, body: bytes) -> Response:
        run_id = int(request.query_params.get("run_id") or 0)
        js = jobs_of(state)
        with js.lock:
            if run_id in js.runs and js.runs[run_id].tasks:
                return _error(
                    400,
                    "INVALID_PARAMETER_VALUE",
                    "Retrieving the output of runs with multiple tasks is not supported. "
                    "Please retrieve the output of each individual task run instead.",
                )
            task = next((t for r in js.runs.values() for t in r.tasks.values() if t.run_id == run_id), None)
        if task is None:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Run {run_id} does not exist.")
        out: dict[str, Any] = {"metadata": task.public()}
        exit_value, problem = _outputs(state).get(run_id, (None, None))
        if problem:
            out["error"] = problem
        elif task.life == "TERMINATED" and task.result == "SUCCESS":
            out["notebook_output"] = {"result": exit_value, "truncated": False} if exit_value is not None else {}
        return JSONResponse(out)

    return [
        Route("/api/2.2/jobs/runs/submit", handler(submit), methods=["POST"]),
        Route("/api/2.2/jobs/runs/get-output", handler(get_output)),
    ]
