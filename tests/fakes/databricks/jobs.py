"""Jobs API 2.2 on the fake: jobs, and runs that really execute their tasks on the workspace's local
engine (as the Databricks CLI's own test server does), one thread per run.

- ``jobs/create|get|list|reset|delete``; ``create`` fills ``run_if`` (ALL_SUCCESS) and
  ``timeout_seconds`` (0) as the real service does.
- ``jobs/run-now`` honours ``idempotency_token`` (the same token gives the same run) and
  ``max_concurrent_runs`` (a run past it ends SKIPPED, as Databricks does without a queue).
- A run moves PENDING -> RUNNING -> TERMINATED (result SUCCESS, FAILED, CANCELED, TIMEDOUT) and each
  task PENDING/BLOCKED -> RUNNING -> TERMINATED (SUCCESS, FAILED, TIMEDOUT, CANCELED, UPSTREAM_FAILED,
  EXCLUDED), with ``run_if``, ``max_retries`` (a new task run id and ``attempt_number`` per attempt),
  ``min_retry_interval_millis`` and ``timeout_seconds``.
- Tasks: ``sql_task.file`` reads the workspace file (``workspace.py``) and runs it as a
  statement on the warehouse's engine (``sqlexec``; ``INSERT INTO ... SELECT`` here); ``run_job_task``
  runs the other job and waits; a ``notebook_task`` whose notebook is not in the workspace fails with
  ``RESOURCE_NOT_FOUND`` (notebooks are not executed by this module).
- ``runs/get`` (tasks in pages of 100), ``runs/list`` (``job_id``, ``active_only``,
  ``completed_only``, ``limit``, ``page_token``), ``runs/cancel`` and ``runs/repair`` (``rerun_tasks``,
  ``rerun_all_failed_tasks``, ``rerun_dependent_tasks``, ``latest_repair_id``; ``repair_history``).
"""

from __future__ import annotations

import graphlib
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import sqlglot
from sqlglot import exp
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.databricks import sqlexec, workspace
from tests.fakes.databricks.state import Statement, WorkspaceState

if TYPE_CHECKING:
    from tests.fakes.databricks.server import FakeDatabricks

PAGE = 100
_ACTIVE = frozenset({"PENDING", "QUEUED", "BLOCKED", "RUNNING", "TERMINATING", "WAITING_FOR_RETRY"})
_OK = frozenset({"SUCCESS", "EXCLUDED"})


def _now() -> int:
    return int(time.time() * 1000)


@dataclass
class TaskRun:
    spec: dict[str, Any]
    run_id: int
    life: str = "PENDING"
    result: str | None = None
    message: str = ""
    attempt: int = 0
    start: int = 0
    end: int = 0

    @property
    def key(self) -> str:
        return str(self.spec["task_key"])

    def public(self) -> dict[str, Any]:
        state: dict[str, Any] = {"life_cycle_state": self.life, "state_message": self.message}
        if self.result:
            state["result_state"] = self.result
        out = {**self.spec, "run_id": self.run_id, "attempt_number": self.attempt, "state": state}
        out |= {"start_time": self.start, "end_time": self.end, "run_page_url": f"https://fake/#job/run/{self.run_id}"}
        return out


@dataclass
class JobRun:
    run_id: int
    job_id: int
    number_in_job: int
    settings: dict[str, Any]
    parameters: dict[str, str]
    tasks: dict[str, TaskRun]
    trigger: str = "ONE_TIME"
    life: str = "PENDING"
    result: str | None = None
    message: str = ""
    start: int = field(default_factory=_now)
    end: int = 0
    cancel: threading.Event = field(default_factory=threading.Event)
    statement: Statement | None = None
    repairs: list[dict[str, Any]] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        state: dict[str, Any] = {"life_cycle_state": self.life, "state_message": self.message}
        if self.result:
            state["result_state"] = self.result
        defaults = {p["name"]: p.get("default", "") for p in self.settings.get("parameters") or []}
        return {
            "run_id": self.run_id,
            "job_id": self.job_id,
            "number_in_job": self.number_in_job,
            "run_name": self.settings.get("name"),
            "run_type": "JOB_RUN",
            "trigger": self.trigger,
            "creator_user_name": "fake@example.com",
            "state": state,
            "status": _status(self.life, self.result),
            "start_time": self.start,
            "end_time": self.end,
            "run_page_url": f"https://fake/#job/{self.job_id}/run/{self.run_id}",
            "job_parameters": [
                {"name": n, "default": d, "value": self.parameters.get(n, d)} for n, d in defaults.items()
            ],
            "tasks": [t.public() for t in self.tasks.values()],
            "repair_history": [
                {"type": "ORIGINAL", "start_time": self.start, "end_time": self.end, "task_run_ids": []},
                *self.repairs,
            ],
        }


@dataclass
class JobsState:
    lock: threading.RLock = field(default_factory=threading.RLock)
    jobs: dict[int, dict[str, Any]] = field(default_factory=dict)
    runs: dict[int, JobRun] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    next_id: int = 1000

    def new_id(self) -> int:
        with self.lock:
            self.next_id += 1
            return self.next_id


def _status(life: str, result: str | None) -> dict[str, Any]:
    if life != "TERMINATED":
        return {"state": "QUEUED" if life == "PENDING" else life}
    code = {"SUCCESS": "SUCCESS", "CANCELED": "CANCELED", "TIMEDOUT": "RUN_EXECUTION_ERROR"}.get(
        result or "", "RUN_EXECUTION_ERROR"
    )
    kind = "SUCCESS" if code in ("SUCCESS", "CANCELED") else "CLIENT_ERROR"
    return {"state": "TERMINATED", "termination_details": {"code": code, "type": kind, "message": ""}}


def jobs_of(state: WorkspaceState) -> JobsState:
    with state.lock:
        if "state" not in state.jobs:
            state.jobs["state"] = JobsState()
        found: JobsState = state.jobs["state"]
        return found


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message}, status_code=status)


def _fix_ups(settings: dict[str, Any]) -> dict[str, Any]:
    """What the service fills in: run_if, timeouts, sorted dependencies (the CLI test server's jobFixUps)."""
    settings = json.loads(json.dumps(settings))
    settings.setdefault("timeout_seconds", 0)
    settings.setdefault("max_concurrent_runs", 1)
    for task in settings.get("tasks") or []:
        task.setdefault("run_if", "ALL_SUCCESS")
        task.setdefault("timeout_seconds", 0)
        task["depends_on"] = sorted(task.get("depends_on") or [], key=lambda d: d["task_key"])
    return settings


def routes(handler: Any, fake: FakeDatabricks) -> list[Route]:
    def job_or_404(js: JobsState, job_id: Any) -> dict[str, Any] | Response:
        job = js.jobs.get(int(job_id)) if str(job_id).isdigit() else None
        return job if job is not None else _error(404, "RESOURCE_DOES_NOT_EXIST", f"Job {job_id} does not exist.")

    def create(state: WorkspaceState, request: Request, body: bytes) -> Response:
        js = jobs_of(state)
        settings = _fix_ups(json.loads(body))
        job_id = js.new_id()
        with js.lock:
            js.jobs[job_id] = {
                "job_id": job_id,
                "created_time": _now(),
                "creator_user_name": "fake@example.com",
                "settings": settings,
            }
        return JSONResponse({"job_id": job_id})

    def get(state: WorkspaceState, request: Request, body: bytes) -> Response:
        job = job_or_404(jobs_of(state), request.query_params.get("job_id"))
        return job if isinstance(job, Response) else JSONResponse(job)

    def list_jobs(state: WorkspaceState, request: Request, body: bytes) -> Response:
        js = jobs_of(state)
        with js.lock:
            jobs = [{k: v for k, v in j.items()} for j in sorted(js.jobs.values(), key=lambda j: j["job_id"])]
        return JSONResponse({"jobs": jobs, "has_more": False})

    def reset(state: WorkspaceState, request: Request, body: bytes) -> Response:
        req = json.loads(body)
        js = jobs_of(state)
        job = job_or_404(js, req.get("job_id"))
        if isinstance(job, Response):
            return job
        with js.lock:
            job["settings"] = _fix_ups(req["new_settings"])
        return JSONResponse({})

    def delete(state: WorkspaceState, request: Request, body: bytes) -> Response:
        js = jobs_of(state)
        job = job_or_404(js, json.loads(body).get("job_id"))
        if isinstance(job, Response):
            return job
        with js.lock:
            del js.jobs[int(job["job_id"])]
        return JSONResponse({})

    def run_now(state: WorkspaceState, request: Request, body: bytes) -> Response:
        req = json.loads(body)
        js = jobs_of(state)
        job = job_or_404(js, req.get("job_id"))
        if isinstance(job, Response):
            return job
        token = req.get("idempotency_token")
        with js.lock:
            if token and token in js.tokens:
                run = js.runs[js.tokens[token]]
                return JSONResponse({"run_id": run.run_id, "number_in_job": run.number_in_job})
            run = start_run(state, js, job, dict(req.get("job_parameters") or {}))
            if token:
                js.tokens[token] = run.run_id
        return JSONResponse({"run_id": run.run_id, "number_in_job": run.number_in_job})

    def start_run(state: WorkspaceState, js: JobsState, job: dict[str, Any], parameters: dict[str, str]) -> JobRun:
        settings = json.loads(json.dumps(job["settings"]))
        with js.lock:
            active = sum(1 for r in js.runs.values() if r.job_id == job["job_id"] and r.life in _ACTIVE)
            number = 1 + sum(1 for r in js.runs.values() if r.job_id == job["job_id"])
            run = JobRun(
                js.new_id(),
                int(job["job_id"]),
                number,
                settings,
                parameters,
                {t["task_key"]: TaskRun(t, js.new_id()) for t in settings.get("tasks") or []},
            )
            js.runs[run.run_id] = run
        if active >= int(settings.get("max_concurrent_runs") or 1):
            run.life, run.message, run.end = "SKIPPED", "Skipped: the job's max_concurrent_runs was reached", _now()
            return run
        threading.Thread(target=execute, args=(state, js, run, set(run.tasks)), daemon=True).start()
        return run

    # -- running -------------------------------------------------------------------------------

    def execute(state: WorkspaceState, js: JobsState, run: JobRun, todo: set[str]) -> None:
        run.life = "RUNNING"
        order = graphlib.TopologicalSorter(
            {k: {d["task_key"] for d in t.spec.get("depends_on") or []} for k, t in run.tasks.items()}
        ).static_order()
        for key in order:
            task = run.tasks[key]
            if key not in todo:
                continue
            if run.cancel.is_set():
                task.life, task.result, task.message = "TERMINATED", "CANCELED", "The run was canceled"
                continue
            deps = [run.tasks[d["task_key"]] for d in task.spec.get("depends_on") or []]
            skip = _skip(task.spec.get("run_if", "ALL_SUCCESS"), deps)
            if skip is not None:
                task.life, task.result, task.message = "TERMINATED", skip, f"Skipped: run_if {task.spec.get('run_if')}"
                task.start = task.end = _now()
                continue
            run_task(state, js, run, task)
        results = [t.result for t in run.tasks.values()]
        if run.cancel.is_set():
            run.result = "CANCELED"
        elif all(r in _OK for r in results):
            run.result = "SUCCESS"
        elif any(r == "TIMEDOUT" for r in results):
            run.result = "TIMEDOUT"
        else:
            run.result = "FAILED"
        run.message = "" if run.result == "SUCCESS" else f"{sum(r not in _OK for r in results)} task(s) did not succeed"
        run.end = _now()
        if run.repairs:
            run.repairs[-1] |= {
                "end_time": run.end,
                "state": {"life_cycle_state": "TERMINATED", "result_state": run.result},
            }
        run.life = "TERMINATED"

    def run_task(state: WorkspaceState, js: JobsState, run: JobRun, task: TaskRun) -> None:
        retries = int(task.spec.get("max_retries") or 0)
        attempt = 0
        while True:
            task.attempt, task.life, task.result, task.message = attempt, "RUNNING", None, ""
            task.start, task.end = _now(), 0
            result, message = attempt_task(state, js, run, task)
            task.end = _now()
            can_retry = result == "FAILED" or (result == "TIMEDOUT" and task.spec.get("retry_on_timeout"))
            if can_retry and (retries < 0 or attempt < retries) and not run.cancel.is_set():
                task.life, task.result, task.message = "WAITING_FOR_RETRY", None, message
                run.cancel.wait(int(task.spec.get("min_retry_interval_millis") or 0) / 1000)
                attempt += 1
                with js.lock:
                    task.run_id = js.new_id()
                continue
            task.life, task.result, task.message = "TERMINATED", result, message
            return

    def attempt_task(state: WorkspaceState, js: JobsState, run: JobRun, task: TaskRun) -> tuple[str, str]:
        timeout = float(task.spec.get("timeout_seconds") or 0) or fake.statement_timeout
        try:
            if "sql_task" in task.spec:
                return sql_task(state, run, task.spec["sql_task"], timeout)
            if "notebook_task" in task.spec:
                path = task.spec["notebook_task"].get("notebook_path", "")
                found = workspace.lookup(state, path)
                if found is None or found.object_type != "NOTEBOOK":
                    return "FAILED", f"RESOURCE_NOT_FOUND: Unable to access the notebook {path}: it does not exist."
                return "FAILED", f"the fake does not execute notebooks ({path})"
            if "run_job_task" in task.spec:
                return run_job_task(state, js, run, task.spec["run_job_task"])
        except Exception as exc:  # reported as the task's failure, like a driver error
            fake.internal_errors.append(f"task {task.key}: {type(exc).__name__}: {exc}")
            return "FAILED", f"INTERNAL_ERROR: {type(exc).__name__}: {exc}"
        return "FAILED", "the fake runs sql_task, notebook_task and run_job_task only"

    def sql_task(state: WorkspaceState, run: JobRun, spec: dict[str, Any], timeout: float) -> tuple[str, str]:
        if spec.get("warehouse_id") not in state.warehouses:
            return "FAILED", f"RESOURCE_DOES_NOT_EXIST: SQL warehouse {spec.get('warehouse_id')} does not exist."
        path = (spec.get("file") or {}).get("path")
        if not path:
            return "FAILED", "the fake runs sql_task.file only"
        found = workspace.lookup(state, path)
        if found is None or found.object_type != "FILE":
            return "FAILED", f"RESOURCE_NOT_FOUND: the file {path} does not exist."
        text = found.content.decode().strip().rstrip(";")
        stmt = Statement(
            id=uuid.uuid4().hex, sql=text, disposition="INLINE", format="JSON_ARRAY", row_limit=None, byte_limit=None
        )
        run.statement = stmt
        fake.statements_seen.append(text)
        try:
            tree = sqlglot.parse_one(text, read="databricks")
            if isinstance(tree, exp.Insert):
                _insert(state, tree, timeout)
            elif isinstance(tree, exp.Merge) and isinstance(tree.args.get("using"), exp.Subquery):
                _merge_select(state, tree, timeout)
            else:
                sqlexec.execute(state, stmt, timeout=timeout)
        except sqlexec.Unsupported as exc:
            fake.invalid_sql.append(str(exc))
            return "FAILED", f"[PARSE_SYNTAX_ERROR] {exc}"
        except sqlexec.StatementError as exc:
            if run.cancel.is_set():
                return "CANCELED", "The run was canceled"
            if exc.code == "DEADLINE_EXCEEDED":
                return "TIMEDOUT", f"Task timed out after {timeout:g} s"
            return "FAILED", str(exc)
        finally:
            run.statement = None
        return ("CANCELED", "The run was canceled") if run.cancel.is_set() else ("SUCCESS", "")

    def run_job_task(state: WorkspaceState, js: JobsState, run: JobRun, spec: dict[str, Any]) -> tuple[str, str]:
        job = js.jobs.get(int(spec.get("job_id") or 0))
        if job is None:
            return "FAILED", f"RESOURCE_NOT_FOUND: Job {spec.get('job_id')} does not exist."
        child = start_run(state, js, job, dict(spec.get("job_parameters") or {}))
        while child.life in _ACTIVE:
            if run.cancel.is_set():
                cancel(child)
            time.sleep(0.02)
        return ("SUCCESS", "") if child.result == "SUCCESS" else ("FAILED", f"run {child.run_id} ended {child.result}")

    def cancel(run: JobRun) -> None:
        run.cancel.set()
        stmt = run.statement
        if stmt is not None and stmt.interrupt is not None:
            stmt.interrupt()

    # -- runs ----------------------------------------------------------------------------------

    def get_run(state: WorkspaceState, request: Request, body: bytes) -> Response:
        js = jobs_of(state)
        run = js.runs.get(int(request.query_params.get("run_id") or 0))
        if run is None:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Run {request.query_params.get('run_id')} does not exist.")
        out = run.public()
        start = int(request.query_params.get("page_token") or 0)
        out["tasks"] = out["tasks"][start : start + PAGE]
        if start + PAGE < len(run.tasks):
            out["next_page_token"] = str(start + PAGE)
            out["has_more"] = True
        return JSONResponse(out)

    def list_runs(state: WorkspaceState, request: Request, body: bytes) -> Response:
        q = request.query_params
        if q.get("active_only") == "true" and q.get("completed_only") == "true":
            return _error(400, "INVALID_PARAMETER_VALUE", "active_only and completed_only cannot both be true")
        js = jobs_of(state)
        with js.lock:
            runs = sorted(js.runs.values(), key=lambda r: (r.start, r.run_id), reverse=True)
        if q.get("job_id"):
            runs = [r for r in runs if str(r.job_id) == q["job_id"]]
        if q.get("active_only") == "true":
            runs = [r for r in runs if r.life in _ACTIVE]
        if q.get("completed_only") == "true":
            runs = [r for r in runs if r.life not in _ACTIVE]
        limit = int(q.get("limit") or 20) or 25
        if not 0 < limit <= 25:
            return _error(400, "INVALID_PARAMETER_VALUE", "limit must be between 1 and 25")
        start = int(q.get("page_token") or 0)
        page = runs[start : start + limit]
        out: dict[str, Any] = {"runs": [_listed(r, q.get("expand_tasks") == "true") for r in page]}
        out["has_more"] = start + limit < len(runs)
        if out["has_more"]:
            out["next_page_token"] = str(start + limit)
        return JSONResponse(out)

    def cancel_run(state: WorkspaceState, request: Request, body: bytes) -> Response:
        js = jobs_of(state)
        run = js.runs.get(int(json.loads(body).get("run_id") or 0))
        if run is None:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", "Run does not exist.")
        if run.life in _ACTIVE:
            cancel(run)
        return JSONResponse({})

    def repair(state: WorkspaceState, request: Request, body: bytes) -> Response:
        req = json.loads(body)
        js = jobs_of(state)
        run = js.runs.get(int(req.get("run_id") or 0))
        if run is None:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", "Run does not exist.")
        with js.lock:
            if run.life in _ACTIVE:
                return _error(400, "INVALID_STATE", f"Run {run.run_id} is still active; repair it once it has ended")
            latest = run.repairs[-1]["id"] if run.repairs else None
            if req.get("latest_repair_id") != latest:
                return _error(
                    400, "INVALID_PARAMETER_VALUE", f"latest_repair_id {req.get('latest_repair_id')} is not {latest}"
                )
            chosen = set(req.get("rerun_tasks") or [])
            if req.get("rerun_all_failed_tasks"):
                chosen |= {k for k, t in run.tasks.items() if t.result not in _OK}
            unknown = chosen - set(run.tasks)
            if not chosen or unknown:
                return _error(
                    400,
                    "INVALID_PARAMETER_VALUE",
                    f"rerun tasks {sorted(unknown) or '(none)'} are not tasks of the run",
                )
            if req.get("rerun_dependent_tasks"):
                changed = True
                while changed:
                    changed = False
                    for key, t in run.tasks.items():
                        if key not in chosen and any(d["task_key"] in chosen for d in t.spec.get("depends_on") or []):
                            chosen.add(key)
                            changed = True
            repair_id = js.new_id()
            for key in chosen:
                task = run.tasks[key]
                task.run_id, task.life, task.result, task.message = js.new_id(), "PENDING", None, ""
            run.repairs.append(
                {
                    "type": "REPAIR",
                    "id": repair_id,
                    "start_time": _now(),
                    "task_run_ids": [run.tasks[k].run_id for k in sorted(chosen)],
                }
            )
            run.cancel = threading.Event()
            run.life, run.result, run.message, run.end = "PENDING", None, "", 0
        threading.Thread(target=execute, args=(state, js, run, chosen), daemon=True).start()
        return JSONResponse({"repair_id": repair_id})

    return [
        Route("/api/2.2/jobs/create", handler(create), methods=["POST"]),
        Route("/api/2.2/jobs/get", handler(get)),
        Route("/api/2.2/jobs/list", handler(list_jobs)),
        Route("/api/2.2/jobs/reset", handler(reset), methods=["POST"]),
        Route("/api/2.2/jobs/delete", handler(delete), methods=["POST"]),
        Route("/api/2.2/jobs/run-now", handler(run_now), methods=["POST"]),
        Route("/api/2.2/jobs/runs/get", handler(get_run)),
        Route("/api/2.2/jobs/runs/list", handler(list_runs)),
        Route("/api/2.2/jobs/runs/cancel", handler(cancel_run), methods=["POST"]),
        Route("/api/2.2/jobs/runs/repair", handler(repair), methods=["POST"]),
    ]


def _skip(run_if: str, deps: list[TaskRun]) -> str | None:
    if not deps or run_if == "ALL_DONE":
        return None
    failed = [d for d in deps if d.result not in _OK]
    if run_if == "ALL_SUCCESS":
        return "UPSTREAM_FAILED" if failed else None
    if run_if == "AT_LEAST_ONE_FAILED":
        return None if failed else "EXCLUDED"
    if run_if == "NONE_FAILED":
        return "UPSTREAM_FAILED" if any(d.result not in (*_OK, "UPSTREAM_FAILED") for d in deps) else None
    return None


def _listed(run: JobRun, expand: bool) -> dict[str, Any]:
    out = run.public()
    if not expand:
        out.pop("tasks")
    out.pop("repair_history")
    return out


def _insert(state: WorkspaceState, tree: exp.Insert, timeout: float) -> pa.Table:
    """``INSERT INTO catalog.schema.table SELECT ...``: the rows appended to the table."""
    target = tree.this
    if not isinstance(target, exp.Table) or tree.args.get("overwrite") or not isinstance(tree.expression, exp.Query):
        raise sqlexec.Unsupported(f"the fake interprets INSERT INTO <table> SELECT ... only: {tree.sql()}")
    ref = sqlexec._ref(target)
    if not state.engine.table_exists(ref):
        raise sqlexec.StatementError("TABLE_OR_VIEW_NOT_FOUND", f"The table or view `{ref}` cannot be found.")
    rows = sqlexec._select(state, tree.expression, timeout)
    state.engine.write_table(ref, rows.to_reader(), mode="append")
    return rows


def _merge_select(state: WorkspaceState, tree: exp.Merge, timeout: float) -> None:
    """``MERGE INTO t USING (SELECT ...) s ON t.k = s.k UPDATE SET * / INSERT *``: the SELECT's rows
    upserted (``sqlexec`` merges from a table only)."""
    target, using = tree.this, tree.args["using"]
    keys = [
        eq.this.name
        for eq in tree.args["on"].find_all(exp.EQ)
        if isinstance(eq.this, exp.Column)
        and isinstance(eq.expression, exp.Column)
        and eq.this.name == eq.expression.name
    ]
    whens = tree.args.get("whens")
    clauses = sorted(w.sql(dialect="databricks").upper() for w in (whens.expressions if whens is not None else []))
    if clauses != ["WHEN MATCHED THEN UPDATE SET *", "WHEN NOT MATCHED THEN INSERT *"] or not keys:
        raise sqlexec.Unsupported(f"the fake interprets MERGE ... UPDATE SET * / INSERT * only: {clauses}")
    ref = sqlexec._ref(target)
    if not state.engine.table_exists(ref):
        raise sqlexec.StatementError("TABLE_OR_VIEW_NOT_FOUND", f"The table or view `{ref}` cannot be found.")
    rows = sqlexec._select(state, using.this, timeout)
    state.engine.write_table(ref, rows.to_reader(), mode="merge", merge_keys=keys)
