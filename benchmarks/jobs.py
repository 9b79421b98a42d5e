"""What does the job runner cost over running the same statements by hand, and how late do schedules fire?

1. Orchestration overhead. A 200-task DAG of trivial ``sql`` tasks (a root, a fan-out of 60, a
   fan-in, a chain of 80, a fan-out of 57, a fan-in) runs as one job run; the baseline runs the same
   200 statements back to back in this process through the same guard and engine call. Per task,
   the overhead is the task run's time from "ready" (its last dependency ended) to "ended", minus
   the statement's own time in the baseline; printed as p50 and p90 over the 80-task chain, where no
   task waits for a free slot (target p50 < 15 ms). The DAG's
   wall time is compared with its critical path (the longest chain of statement times, 84
   statements): target within 1.3x.
   The sql kind's own work (the statement plus the personal-data check of what it wrote) is also
   timed by calling it directly, and the overhead printed against it too: that part is not
   orchestration (the DAG is also compared with the critical path of that work). The DAG's wall
   time is also compared with the best any runner can do at the DAG's width limit
   (``jobs.max_parallel_tasks`` tasks at once, list scheduling of the measured statement times),
   and on this machine's cores (the statements are CPU-bound: with fewer cores
   than task slots, a fan-out runs a core's worth at a time, whatever the runner does); and,
   measured, with the same work (the statements, then the sql kind's own work) run on that many
   threads of this process with no runner at all. ``--dag-store postgres``: the system store (runs,
   jobs, settings) in a new PostgreSQL database on the server of ``TSUNAMI_TEST_POSTGRES_URL``
   instead of SQLite (the tables stay in the embedded lakehouse).
2. Schedule lag. ``--jobs`` jobs fire every ``--every`` seconds for ``--seconds`` seconds with two
   workers on one store; every tick must be queued exactly once (0 missed, 0 duplicated) and the lag
   from the tick to its run being queued (fired) is printed as p50/p99 (target p99 < 1 s), then the
   lag from the tick to its run starting (which waits for a free run slot), over the runs that had
   started when they were counted. A tick counts as
   missed only if it never gets its run: the jobs are paused once every tick of the window was taken
   (bounded wait), so a late tick shows in the lag, not as missed.
3. ``--serve``: the same with ``--serve-jobs`` (500) jobs every ``--serve-every`` (10) s for
   ``--serve-seconds`` (180) s under ``tsunami serve --workers 2`` (the jobs are created paused, and
   resumed once both workers answer).
4. ``--pipeline-rows N``: a job ``sync`` (full refresh of an N-row PostgreSQL table from
   ``TSUNAMI_TEST_POSTGRES_URL``, the table of ``pg_sync.py``) -> ``transform`` -> ``gold_refresh``
   against the same three service calls made one after the other (target <= 1.05x); alternated,
   ``--pipeline-repeat`` times each, medians compared.

Usage: ``python benchmarks/jobs.py [--jobs 50] [--every 5] [--seconds 30] [--no-dag] [--no-schedules]
[--dag-store sqlite|postgres] [--serve] [--pipeline-rows 5000000]`` (the target figures are for ``--serve``
and 5,000,000 rows).
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import os
import pathlib
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from typing import Any, cast

import httpx
import psutil
import psycopg
from sqlalchemy.engine import make_url

from servicetsunami.errors import TsunamiError
from servicetsunami.services.container import Services
from servicetsunami.services.identity import tenants
from servicetsunami.services.ingestion import connections, syncs
from servicetsunami.services.pipelines import job_runs, jobs
from servicetsunami.services.pipelines import tasks as tasks_mod
from servicetsunami.services.pipelines.runner import TaskContext
from servicetsunami.services.runs import service as runs
from servicetsunami.services.transforms import gold, silver
from servicetsunami.settings import Settings
from servicetsunami.sql import guard_query
from servicetsunami.store.models import utcnow
from servicetsunami.store.repositories import jobs as jobs_repo
from servicetsunami.tenancy import Principal, TableRef


def _statement(key: str) -> str:
    return f"SELECT {abs(hash(key)) % 1000} AS n"


def _dag() -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = [{"task_key": "root", "depends_on": []}]
    fan1 = [f"a{i}" for i in range(60)]
    tasks += [{"task_key": k, "depends_on": ["root"]} for k in fan1]
    tasks.append({"task_key": "join1", "depends_on": fan1})
    previous = "join1"
    for i in range(80):
        tasks.append({"task_key": f"c{i}", "depends_on": [previous]})
        previous = f"c{i}"
    fan2 = [f"b{i}" for i in range(57)]
    tasks += [{"task_key": k, "depends_on": [previous]} for k in fan2]
    tasks.append({"task_key": "join2", "depends_on": fan2})
    for task in tasks:
        task["kind"] = "sql"
        task["config"] = {
            "sql": f"CREATE OR REPLACE TABLE silver.t_{task['task_key']} AS {_statement(task['task_key'])}"
        }
    assert len(tasks) == 200
    return tasks


def _principal(svc: Services, role: str = "engineer") -> Principal:
    tenants.create_tenant(svc.store, "bench")
    key = tenants.create_api_key(svc.store, tenant_slug="bench", name="bench", role=role)
    principal = svc.authenticate(key.plaintext)
    svc.engine.ensure_catalog(principal.catalog)
    return principal


@contextlib.contextmanager
def _dag_store(kind: str) -> Iterator[str]:
    """The DAG's system store: SQLite in the data folder (""), or a new PostgreSQL database on the
    server of ``TSUNAMI_TEST_POSTGRES_URL``, dropped at the end."""
    if kind == "sqlite":
        yield ""
        return
    from pg_sync import conninfo

    url = os.environ.get("TSUNAMI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    name = f"tsunami_bench_dag_{os.getpid()}"
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield str(make_url(url).set(database=name).render_as_string(hide_password=False))
    finally:
        with psycopg.connect(conninfo(url), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def overhead(home: pathlib.Path, store: str) -> None:
    with _dag_store(store) as database_url:
        _overhead(home, database_url)


def _overhead(home: pathlib.Path, database_url: str) -> None:
    settings = Settings(home=home, database_url=database_url, jobs={"max_parallel_tasks": 4}, _env_file=None)  # type: ignore[call-arg]
    svc = Services.open(settings)
    try:
        principal = _principal(svc)
        tasks = _dag()
        guarded = {
            t["task_key"]: guard_query(_statement(t["task_key"]), catalog=principal.catalog, default_schema="silver")
            for t in tasks
        }

        def statement(task: dict[str, Any]) -> None:
            ref = TableRef(principal.catalog, "silver", f"t_{task['task_key']}")
            svc.engine.write_query(ref, guarded[task["task_key"]], mode="overwrite", timeout_seconds=60)

        def kind_work(task: dict[str, Any]) -> None:
            ctx = TaskContext(svc, principal, cast(Any, None), "bench", "bench", task["task_key"], None)
            tasks_mod._sql(svc, ctx, tasks_mod.SqlConfig.model_validate(task["config"]))

        own: dict[str, float] = {}
        for task in tasks:  # the baseline: the same statements, one after the other, in this process
            started = time.perf_counter()
            statement(task)
            own[task["task_key"]] = time.perf_counter() - started
        baseline = sum(own.values())
        kind_own: dict[str, float] = {}
        for task in tasks:  # the sql kind's own work (statement + personal-data check), called directly
            started = time.perf_counter()
            kind_work(task)
            kind_own[task["task_key"]] = time.perf_counter() - started
        job_id = jobs.create_job(svc, principal, {"name": "dag200", "tasks": tasks}).job_id
        started = time.perf_counter()
        run = job_runs.run_job(svc, principal, job_id, wait_seconds=600)
        wall = time.perf_counter() - started
        assert run.state == "succeeded", run.error
        by_key = {t["task_key"]: t for t in run.tasks}
        begin = run.started_at
        assert begin is not None
        costs, kind_costs, waits, spans = [], [], [], []
        for task in tasks:
            deps = [datetime.fromisoformat(by_key[d]["finished_at"]) for d in task["depends_on"]]
            ready = max(deps) if deps else begin
            ended = datetime.fromisoformat(by_key[task["task_key"]]["finished_at"])
            began = datetime.fromisoformat(by_key[task["task_key"]]["started_at"])
            costs.append((ended - ready).total_seconds() - own[task["task_key"]])
            kind_costs.append((ended - ready).total_seconds() - kind_own[task["task_key"]])
            waits.append((began - ready).total_seconds())
            spans.append((ended - began).total_seconds())
        finish: dict[str, float] = {}
        for task in tasks:  # tasks are listed in dependency order
            finish[task["task_key"]] = own[task["task_key"]] + max((finish[d] for d in task["depends_on"]), default=0.0)
        critical = max(finish.values())
        kind_finish: dict[str, float] = {}
        for task in tasks:
            kind_finish[task["task_key"]] = kind_own[task["task_key"]] + max(
                (kind_finish[d] for d in task["depends_on"]), default=0.0
            )
        kind_critical = max(kind_finish.values())
        width = _at_width(tasks, own, settings.jobs.max_parallel_tasks)
        chain = sorted(c for t, c in zip(tasks, costs, strict=True) if t["task_key"].startswith("c"))
        kind_chain = sorted(c for t, c in zip(tasks, kind_costs, strict=True) if t["task_key"].startswith("c"))
        p50, p90 = statistics.median(chain) * 1000, chain[int(len(chain) * 0.9)] * 1000
        print(
            f"200-task DAG (system store: {svc.store.dialect}): wall {wall:.2f} s; "
            f"the statements back to back {baseline:.2f} s"
        )
        print(f"  overhead per task on the 80-task chain p50 {p50:.1f} ms, p90 {p90:.1f} ms (target p50 < 15 ms)")
        print(
            f"  against the sql kind's own work ({sum(kind_own.values()):.2f} s back to back): "
            f"p50 {statistics.median(kind_chain) * 1000:.1f} ms, "
            f"p90 {kind_chain[int(len(kind_chain) * 0.9)] * 1000:.1f} ms"
        )
        print(
            f"  of which: ready -> started p50 {statistics.median(waits) * 1000:.1f} ms, "
            f"started -> ended p50 {statistics.median(spans) * 1000:.1f} ms"
        )
        print(f"  critical path {critical:.2f} s; DAG / critical path = {wall / critical:.2f}x (target <= 1.3x)")
        print(
            f"  critical path of the sql kind's own work {kind_critical:.2f} s; "
            f"DAG / that = {wall / kind_critical:.2f}x"
        )
        print(
            f"  best possible at {settings.jobs.max_parallel_tasks} tasks at once {width:.2f} s "
            f"({width / critical:.2f}x the critical path); DAG / that = {wall / width:.2f}x"
        )
        cores = min(os.cpu_count() or 1, settings.jobs.max_parallel_tasks)
        bound = _at_width(tasks, own, cores)
        print(
            f"  best possible on this machine's {cores} core(s), one statement a core: {bound:.2f} s "
            f"({bound / critical:.2f}x the critical path); DAG / that = {wall / bound:.2f}x"
        )
        slots = settings.jobs.max_parallel_tasks
        for label, work in (("the statements", statement), ("the sql kind's own work", kind_work)):
            bare = _threaded(tasks, work, slots)
            print(
                f"  {label} on {slots} threads in this process, no runner: {bare:.2f} s "
                f"({bare / critical:.2f}x the critical path); DAG / that = {wall / bare:.2f}x"
            )
    finally:
        svc.close()


def _at_width(tasks: list[dict[str, Any]], own: dict[str, float], slots: int) -> float:
    """The DAG's wall time with ``slots`` tasks at once and no overhead: list scheduling in
    dependency order, each task starting when its dependencies ended and a slot is free."""
    free = [0.0] * slots
    ends: dict[str, float] = {}
    for task in tasks:  # dependency order; a task takes the earliest free slot after its dependencies
        ready = max((ends[d] for d in task["depends_on"]), default=0.0)
        slot = heapq.heappop(free)
        ends[task["task_key"]] = max(ready, slot) + own[task["task_key"]]
        heapq.heappush(free, ends[task["task_key"]])
    return max(ends.values())


def _threaded(tasks: list[dict[str, Any]], work: Callable[[dict[str, Any]], None], slots: int) -> float:
    """Wall time of ``work`` over the DAG on ``slots`` threads of this process, each task submitted
    as soon as its dependencies are done: what running the same work at the same width costs with
    no runner (no runs recorded, no coordinator), on this machine's cores as they are."""
    dependants: dict[str, list[dict[str, Any]]] = {}
    waiting = {t["task_key"]: len(t["depends_on"]) for t in tasks}
    for task in tasks:
        for dep in task["depends_on"]:
            dependants.setdefault(dep, []).append(task)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=slots) as pool:
        running = {pool.submit(work, t): t for t in tasks if not t["depends_on"]}
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                future.result()
                for task in dependants.get(running.pop(future)["task_key"], []):
                    waiting[task["task_key"]] -= 1
                    if waiting[task["task_key"]] == 0:
                        running[pool.submit(work, task)] = task
    return time.perf_counter() - started


def _count_ticks(
    svc: Services, principal: Principal, ids: list[str], every: int, start: datetime, end: datetime
) -> tuple[int, int, list[float], int, list[float]]:
    """(runs, duplicated, lags, missed, start lags) of the ticks between ``start`` and ``end``: the
    lag is from the tick to its run being queued (fired: what the scheduler does), the start lag
    from the tick to its run starting (which waits for a free run slot on either worker)."""
    lags: list[float] = []
    starts: list[float] = []
    duplicated = missed = total = 0
    for job_id in ids:
        found = job_runs.list_job_runs(svc, principal, job_id=job_id, limit=10_000)
        ticks = [datetime.fromisoformat(r.scheduled_for) for r in found if r.scheduled_for]
        total += len(ticks)
        duplicated += len(ticks) - len(set(ticks))
        lags += [
            (r.created_at - datetime.fromisoformat(r.scheduled_for)).total_seconds() for r in found if r.scheduled_for
        ]
        starts += [
            (r.started_at - datetime.fromisoformat(r.scheduled_for)).total_seconds()
            for r in found
            if r.scheduled_for and r.started_at is not None
        ]
        expected, t = set(), start.replace(microsecond=0) + timedelta(seconds=1)
        while t <= end:
            if t.second % every == 0:
                expected.add(t)
            t += timedelta(seconds=1)
        missed += len(expected - set(ticks))
    return total, duplicated, sorted(lags), missed, sorted(starts)


def _start_lags(starts: list[float], total: int) -> str:
    if not starts:
        return f"no run of the {total} had started when they were counted"
    return (
        f"tick -> run started ({len(starts)} of {total} runs had started when counted): "
        f"p50 {statistics.median(starts):.1f} s, p99 {starts[int(len(starts) * 0.99)]:.1f} s, max {starts[-1]:.1f} s"
    )


def _settle(svc: Services, ids: list[str], end: datetime, deadline: float) -> bool:
    """Wait until every job's cursor is past ``end`` (each tick of the window was taken)."""
    while time.monotonic() < deadline:
        with svc.store.session() as session:
            behind = [j for j in ids if (c := jobs_repo.get_job(session, j, tenant_id=None).next_fire_at) and c <= end]
        if not behind:
            return True
        time.sleep(0.5)
    return False


def schedule_lag(home: pathlib.Path, n_jobs: int, every: int, seconds: float) -> None:
    def open_worker() -> Services:
        settings = Settings(home=home, jobs={"tick_seconds": 0.2, "max_parallel_tasks": 8}, _env_file=None)  # type: ignore[call-arg]
        return Services.open(settings)

    svc, second = open_worker(), open_worker()
    try:
        principal = _principal(svc)
        cron = f"*/{every} * * * * ?"
        ids = []
        for i in range(n_jobs):
            definition = {
                "name": f"tick_{i}",
                "max_concurrent_runs": 100,
                "tasks": [{"task_key": "ping", "kind": "sql", "config": {"sql": "SELECT 1"}}],
                "schedule": {"quartz_cron_expression": cron, "timezone_id": "UTC"},
            }
            ids.append(jobs.create_job(svc, principal, definition).job_id)
        start = utcnow()
        runs.ensure_worker(svc)
        runs.ensure_worker(second)
        time.sleep(seconds)
        end = utcnow()
        settled = _settle(svc, ids, end, time.monotonic() + 120)
        for job_id in ids:
            jobs.set_paused(svc, principal, job_id, paused=True)
        total, duplicated, lags, missed, starts = _count_ticks(svc, principal, ids, every, start, end)
        p50, p99 = statistics.median(lags), lags[int(len(lags) * 0.99)]
        print(f"schedules: {n_jobs} jobs every {every} s for {seconds:g} s on two workers: {total} runs")
        print(
            f"  missed {missed}, duplicated {duplicated}; "
            f"lag from tick to run queued p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms (target < 1 s)"
            + ("" if settled else "; the workers had not taken every tick 120 s after the window")
        )
        print(f"  {_start_lags(starts, total)}")
    finally:
        second.close()
        svc.close()


def _pause_all(svc: Services, principal: Principal, ids: list[str], *, paused: bool = True) -> None:
    """Pause (or resume) every job, trying again while the busy store answers "try again"."""
    for job_id in ids:
        for attempt in range(60):
            try:
                jobs.set_paused(svc, principal, job_id, paused=paused)
                break
            except TsunamiError as exc:
                if not exc.is_transient or attempt == 59:
                    raise
                time.sleep(0.5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve_workers(pid: int) -> int:
    try:
        children = psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return 0
    return sum(1 for c in children if "spawn_main" in " ".join(c.cmdline()))


def schedule_serve(home: pathlib.Path, n_jobs: int, every: int, seconds: float) -> None:
    """The schedule figures under ``tsunami serve --workers 2``: this process only creates, resumes,
    pauses and counts the jobs through the services; the server's two workers fire them."""
    settings = Settings(home=home, _env_file=None)  # type: ignore[call-arg]
    svc = Services.open(settings)
    server: subprocess.Popen[bytes] | None = None
    try:
        principal = _principal(svc)
        ids = []
        for i in range(n_jobs):
            definition = {
                "name": f"serve_tick_{i}",
                "max_concurrent_runs": 100,
                "tasks": [{"task_key": "ping", "kind": "sql", "config": {"sql": "SELECT 1"}}],
                "schedule": {"quartz_cron_expression": f"*/{every} * * * * ?", "timezone_id": "UTC"},
            }
            ids.append(jobs.create_job(svc, principal, definition).job_id)
            jobs.set_paused(svc, principal, ids[-1], paused=True)
        port = _free_port()
        env = {**os.environ, "TSUNAMI_HOME": str(home), "TSUNAMI_PORT": str(port), "TSUNAMI_LOG_LEVEL": "WARNING"}
        log = home / "serve.log"
        with open(log, "wb") as out:
            tsunami = pathlib.Path(sys.executable).parent / "tsunami"
            server = subprocess.Popen([str(tsunami), "serve", "--workers", "2"], env=env, stdout=out, stderr=out)
        waited = time.monotonic()
        deadline = waited + 600  # a loaded machine takes long to start two workers
        while True:
            try:
                if (
                    _serve_workers(server.pid) >= 2
                    and httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).is_success
                ):
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"tsunami serve did not start (see {log})")
            time.sleep(0.5)
        time.sleep(5)  # both workers' launchers are up
        print(f"tsunami serve --workers 2 answered after {time.monotonic() - waited:.0f} s; resuming {n_jobs} jobs")
        _pause_all(svc, principal, ids, paused=False)
        start = utcnow()
        time.sleep(seconds)
        end = utcnow()
        settled = _settle(svc, ids, end, time.monotonic() + 300)
        _pause_all(svc, principal, ids)
        total, duplicated, lags, missed, starts = _count_ticks(svc, principal, ids, every, start, end)
        p50, p99 = statistics.median(lags), lags[int(len(lags) * 0.99)]
        print(f"schedules under serve: {n_jobs} jobs every {every} s for {seconds:g} s: {total} runs queued")
        print(
            f"  missed {missed}, duplicated {duplicated}; lag from tick to run queued p50 {p50 * 1000:.0f} ms, "
            f"p99 {p99 * 1000:.0f} ms, max {lags[-1] * 1000:.0f} ms (target: 0 / 0, p99 < 1 s)"
            + ("" if settled else "; the workers had not taken every tick 300 s after the window")
        )
        print(f"  {_start_lags(starts, total)}")
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=120)
            except subprocess.TimeoutExpired:
                server.kill()
        svc.close()


def pipeline(home: pathlib.Path, rows: int, repeat: int) -> None:
    """sync -> transform -> gold_refresh as a job against the same three service calls by hand."""
    from pg_sync import SCHEMA, conninfo, ensure_table  # the 5M-row table of the sync benchmark

    url = os.environ.get("TSUNAMI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    name = f"rows_{rows}"
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        ensure_table(conn, name, rows)
    info = psycopg.conninfo.conninfo_to_dict(conninfo(url))
    limits = {"timeout_seconds": 1800, "write_timeout_seconds": 3600}  # a loaded machine: 5M rows take minutes
    settings = Settings(home=home, query=limits, _env_file=None)  # type: ignore[call-arg]
    svc = Services.open(settings)
    try:
        principal = _principal(svc, "admin")  # an admin may add the connection
        cid = connections.connect_postgres(
            svc,
            principal,
            name="bench_pg",
            host=str(info.get("host", "127.0.0.1")),
            port=int(str(info.get("port", 5432))),
            database=str(info["dbname"]),
            user=str(info.get("user", "postgres")),
            password=str(info.get("password") or "unused"),
        ).id
        table = f"{SCHEMA}.{name}"
        gold_sql = "SELECT status, count(*) AS n, sum(amount) AS total FROM silver.orders GROUP BY status"

        def by_hand() -> float:
            started = time.perf_counter()
            synced = syncs.sync_table_to_bronze(svc, principal, cid, table, target_table="orders", wait_seconds=3600)
            assert synced.status == "succeeded", synced
            silver.transform_to_silver(svc, principal, "orders")
            gold.refresh_gold_table(svc, principal, "orders_by_status")
            return time.perf_counter() - started

        print(f"pipeline over {rows:,} rows: first load (untimed) ...", flush=True)
        syncs.sync_table_to_bronze(svc, principal, cid, table, target_table="orders", wait_seconds=3600)
        silver.transform_to_silver(svc, principal, "orders")
        gold.create_gold_table(svc, principal, "orders_by_status", gold_sql)
        job_id = jobs.create_job(
            svc,
            principal,
            {
                "name": "orders_pipeline",
                "tasks": [
                    {
                        "task_key": "sync",
                        "kind": "sync",
                        "config": {"connection_id": cid, "table_name": table, "target_table": "orders"},
                    },
                    {
                        "task_key": "clean",
                        "kind": "transform",
                        "depends_on": ["sync"],
                        "config": {"bronze_table": "orders"},
                    },
                    {
                        "task_key": "sum",
                        "kind": "gold_refresh",
                        "depends_on": ["clean"],
                        "config": {"table": "orders_by_status"},
                    },
                ],
            },
        ).job_id

        def as_job() -> float:
            started = time.perf_counter()
            run = job_runs.run_job(svc, principal, job_id, wait_seconds=3600)
            assert run.state == "succeeded", run.error
            return time.perf_counter() - started

        hand, job = [], []
        for _ in range(repeat):  # alternated, so a change of load hits both alike
            hand.append(by_hand())
            job.append(as_job())
        h, j = statistics.median(hand), statistics.median(job)
        print(f"  by hand (sync, transform, gold refresh): {', '.join(f'{x:.1f}' for x in hand)} s; median {h:.1f} s")
        print(f"  as a job of three tasks: {', '.join(f'{x:.1f}' for x in job)} s; median {j:.1f} s")
        print(f"  job / by hand = {j / h:.3f}x (target <= 1.05x)")
    finally:
        svc.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--no-dag", action="store_true")
    parser.add_argument("--no-schedules", action="store_true")
    parser.add_argument("--dag-store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--serve-jobs", type=int, default=500)
    parser.add_argument("--serve-every", type=int, default=10)
    parser.add_argument("--serve-seconds", type=float, default=180)
    parser.add_argument("--pipeline-rows", type=int, default=0)
    parser.add_argument("--pipeline-repeat", type=int, default=2)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_dag:
            overhead(pathlib.Path(tmp) / "dag", args.dag_store)
        if not args.no_schedules:
            schedule_lag(pathlib.Path(tmp) / "ticks", args.jobs, args.every, args.seconds)
        if args.serve:
            schedule_serve(pathlib.Path(tmp) / "serve", args.serve_jobs, args.serve_every, args.serve_seconds)
        if args.pipeline_rows:
            pipeline(pathlib.Path(tmp) / "pipeline", args.pipeline_rows, args.pipeline_repeat)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
