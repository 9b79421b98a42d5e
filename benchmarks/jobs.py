"""What does the job runner cost over running the same statements by hand, and how late do schedules fire?

1. Orchestration overhead. A 200-task DAG of trivial ``sql`` tasks (a root, a fan-out of 60, a
   fan-in, a chain of 80, a fan-out of 57, a fan-in) runs as one job run; the baseline runs the same
   200 statements back to back in this process through the same guard and engine call. Per task,
   the overhead is the task run's time from "ready" (its last dependency ended) to "ended", minus
   the statement's own time in the baseline; printed as p50 and p90 over the 80-task chain, where no
   task waits for a free slot (target p50 < 15 ms). The DAG's
   wall time is compared with its critical path (the longest chain of statement times, 84
   statements): target within 1.3x.
2. Schedule lag. ``--jobs`` jobs fire every ``--every`` seconds for ``--seconds`` seconds with two
   workers on one store; every tick must be queued exactly once (0 missed, 0 duplicated) and the lag
   from the tick to its run being queued is printed as p50/p99 (target p99 < 1 s).

Usage: ``python benchmarks/jobs.py [--jobs 50] [--every 5] [--seconds 30]``
(the target figures are for ``--jobs 500 --every 10 --seconds 180``).
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from typing import Any

from servicetsunami.services.container import Services
from servicetsunami.services.identity import tenants
from servicetsunami.services.pipelines import job_runs, jobs
from servicetsunami.services.runs import service as runs
from servicetsunami.settings import Settings
from servicetsunami.sql import guard_query
from servicetsunami.store.models import utcnow
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


def _principal(svc: Services) -> Principal:
    tenants.create_tenant(svc.store, "bench")
    key = tenants.create_api_key(svc.store, tenant_slug="bench", name="bench", role="engineer")
    principal = svc.authenticate(key.plaintext)
    svc.engine.ensure_catalog(principal.catalog)
    return principal


def overhead(home: pathlib.Path) -> None:
    settings = Settings(home=home, jobs={"max_parallel_tasks": 4}, _env_file=None)  # type: ignore[call-arg]
    svc = Services.open(settings)
    try:
        principal = _principal(svc)
        tasks = _dag()
        own: dict[str, float] = {}
        for task in tasks:  # the baseline: the same statements, one after the other, in this process
            ref = TableRef(principal.catalog, "silver", f"t_{task['task_key']}")
            guarded = guard_query(_statement(task["task_key"]), catalog=principal.catalog, default_schema="silver")
            started = time.perf_counter()
            svc.engine.write_query(ref, guarded, mode="overwrite", timeout_seconds=60)
            own[task["task_key"]] = time.perf_counter() - started
        baseline = sum(own.values())
        job_id = jobs.create_job(svc, principal, {"name": "dag200", "tasks": tasks}).job_id
        started = time.perf_counter()
        run = job_runs.run_job(svc, principal, job_id, wait_seconds=600)
        wall = time.perf_counter() - started
        assert run.state == "succeeded", run.error
        by_key = {t["task_key"]: t for t in run.tasks}
        begin = run.started_at
        assert begin is not None
        costs, waits, spans = [], [], []
        for task in tasks:
            deps = [datetime.fromisoformat(by_key[d]["finished_at"]) for d in task["depends_on"]]
            ready = max(deps) if deps else begin
            ended = datetime.fromisoformat(by_key[task["task_key"]]["finished_at"])
            began = datetime.fromisoformat(by_key[task["task_key"]]["started_at"])
            costs.append((ended - ready).total_seconds() - own[task["task_key"]])
            waits.append((began - ready).total_seconds())
            spans.append((ended - began).total_seconds())
        finish: dict[str, float] = {}
        for task in tasks:  # tasks are listed in dependency order
            finish[task["task_key"]] = own[task["task_key"]] + max((finish[d] for d in task["depends_on"]), default=0.0)
        critical = max(finish.values())
        chain = sorted(c for t, c in zip(tasks, costs, strict=True) if t["task_key"].startswith("c"))
        p50, p90 = statistics.median(chain) * 1000, chain[int(len(chain) * 0.9)] * 1000
        print(f"200-task DAG: wall {wall:.2f} s; the statements back to back {baseline:.2f} s")
        print(f"  overhead per task on the 80-task chain p50 {p50:.1f} ms, p90 {p90:.1f} ms (target p50 < 15 ms)")
        print(
            f"  of which: ready -> started p50 {statistics.median(waits) * 1000:.1f} ms, "
            f"started -> ended p50 {statistics.median(spans) * 1000:.1f} ms"
        )
        print(f"  critical path {critical:.2f} s; DAG / critical path = {wall / critical:.2f}x (target <= 1.3x)")
    finally:
        svc.close()


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
        for job_id in ids:
            jobs.set_paused(svc, principal, job_id, paused=True)
        end = utcnow()
        lags, duplicated, missed = [], 0, 0
        for job_id in ids:
            found = job_runs.list_job_runs(svc, principal, job_id=job_id, limit=10_000)
            ticks = [datetime.fromisoformat(r.scheduled_for) for r in found if r.scheduled_for]
            duplicated += len(ticks) - len(set(ticks))
            lags += [
                (r.created_at - datetime.fromisoformat(r.scheduled_for)).total_seconds()
                for r in found
                if r.scheduled_for
            ]
            expected, t = set(), start.replace(microsecond=0) + timedelta(seconds=1)
            while t < end - timedelta(seconds=1):
                if t.second % every == 0:
                    expected.add(t)
                t += timedelta(seconds=1)
            missed += len(expected - set(ticks))
        lags.sort()
        p50, p99 = statistics.median(lags), lags[int(len(lags) * 0.99)]
        print(f"schedules: {n_jobs} jobs every {every} s for {seconds:g} s on two workers: {len(lags)} runs")
        print(
            f"  missed {missed}, duplicated {duplicated}; "
            f"lag p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms (target < 1 s)"
        )
    finally:
        second.close()
        svc.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        overhead(pathlib.Path(tmp) / "dag")
        schedule_lag(pathlib.Path(tmp) / "ticks", args.jobs, args.every, args.seconds)


if __name__ == "__main__":
    main()
