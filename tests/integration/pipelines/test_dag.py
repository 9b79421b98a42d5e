"""The DAG runner: dependencies, run_if, retries with backoff, template values, the tenant limit."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from servicetsunami.services.catalog.query import query_sql
from servicetsunami.services.container import Services
from servicetsunami.services.pipelines import job_runs, runner
from servicetsunami.store.repositories import runs as runs_repo
from servicetsunami.tenancy import Principal
from tests.helpers import make_principal
from tests.integration.pipelines.support import create, run_to_end, settings_for, sql_task, states


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Services]:
    services = Services.open(settings_for(tmp_path / "home", max_parallel_tasks=2))
    try:
        yield services
    finally:
        services.close()


@pytest.fixture
def owner(svc: Services) -> Principal:
    return make_principal(svc, "acme", role="engineer")[0]


def _rows(svc: Services, owner: Principal, sql: str) -> list[list[object]]:
    return query_sql(svc, owner, sql).rows


def test_tasks_run_after_their_dependencies_and_pass_values_downstream(svc: Services, owner: Principal) -> None:
    job_id = create(
        svc,
        owner,
        "chain",
        [
            sql_task(
                "numbers",
                "CREATE OR REPLACE TABLE silver.numbers AS SELECT id AS n FROM range({{job.parameters.count}})",
            ),
            sql_task(
                "evens",
                "CREATE OR REPLACE TABLE silver.evens AS SELECT n FROM silver.numbers WHERE n % 2 = 0",
                "numbers",
            ),
            sql_task(
                "odds", "CREATE OR REPLACE TABLE silver.odds AS SELECT n FROM silver.numbers WHERE n % 2 = 1", "numbers"
            ),
            sql_task(
                "total",
                "CREATE OR REPLACE TABLE gold.total AS SELECT (SELECT count(*) FROM silver.evens) + "
                "(SELECT count(*) FROM silver.odds) AS n, {{tasks.numbers.values.rows}} AS expected",
                "evens",
                "odds",
            ),
        ],
        parameters={"count": "10"},
    )
    run = run_to_end(svc, owner, job_id, count="7")
    assert (run.state, run.status) == ("succeeded", "Succeeded"), (run.error, run.tasks)
    assert set(states(run).values()) == {"succeeded"}
    assert _rows(svc, owner, "SELECT n, expected FROM gold.total") == [[7, 7]]
    by_key = {t["task_key"]: t for t in run.tasks}
    assert by_key["total"]["started_at"] >= max(by_key["evens"]["finished_at"], by_key["odds"]["finished_at"])


def test_a_failed_task_skips_its_dependants_and_run_if_decides_the_others(svc: Services, owner: Principal) -> None:
    job_id = create(
        svc,
        owner,
        "branches",
        [
            sql_task("broken", "CREATE OR REPLACE TABLE silver.x AS SELECT * FROM silver.missing_table"),
            sql_task("fine", "CREATE OR REPLACE TABLE silver.fine AS SELECT 1 AS one"),
            sql_task("after_broken", "CREATE OR REPLACE TABLE silver.a AS SELECT 1 AS one", "broken"),
            sql_task(
                "cleanup", "CREATE OR REPLACE TABLE silver.c AS SELECT 1 AS one", "broken", "fine", run_if="all_done"
            ),
            sql_task(
                "alert",
                "CREATE OR REPLACE TABLE silver.alert AS SELECT 1 AS one",
                "broken",
                run_if="at_least_one_failed",
            ),
            sql_task(
                "no_alert", "CREATE OR REPLACE TABLE silver.na AS SELECT 1 AS one", "fine", run_if="at_least_one_failed"
            ),
            sql_task(
                "downstream", "CREATE OR REPLACE TABLE silver.d AS SELECT 1 AS one", "after_broken", run_if="all_done"
            ),
        ],
    )
    run = run_to_end(svc, owner, job_id)
    assert (run.state, run.error_code) == ("failed", "job_run_failed")
    assert states(run) == {
        "broken": "failed",
        "fine": "succeeded",
        "after_broken": "skipped",
        "cleanup": "succeeded",
        "alert": "succeeded",
        "no_alert": "skipped",
        "downstream": "succeeded",
    }
    codes = {t["task_key"]: t["error_code"] for t in run.tasks}
    assert (codes["after_broken"], codes["no_alert"]) == ("upstream_failed", "excluded")


def test_a_failing_task_is_retried_with_backoff_then_fails(svc: Services, owner: Principal) -> None:
    job_id = create(
        svc,
        owner,
        "retries",
        [
            sql_task(
                "flaky",
                "CREATE OR REPLACE TABLE silver.x AS SELECT * FROM silver.nowhere",
                max_retries=2,
                min_retry_interval_seconds=0.2,
            )
        ],
    )
    run = run_to_end(svc, owner, job_id)
    task = run.tasks[0]
    assert (task["state"], task["attempts"]) == ("failed", 3)
    with svc.store.session() as session:
        attempts = sorted(
            runs_repo.list_runs(session, tenant_id=owner.tenant_id, kind="task_run", parent_id=run.run_id),
            key=lambda r: r.created_at,
        )
        gaps = [(b.created_at - a.finished_at).total_seconds() for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4  # doubled for the second retry


def test_a_task_that_fails_once_succeeds_on_its_retry(svc: Services, owner: Principal) -> None:
    job_id = create(
        svc,
        owner,
        "second_time",
        [
            sql_task("make", "CREATE TABLE silver.made AS SELECT 1 AS one"),
            sql_task("again", "CREATE TABLE silver.made_twice AS SELECT * FROM silver.made", "make", max_retries=1),
        ],
    )
    run = run_to_end(svc, owner, job_id)
    assert run.state == "succeeded"
    second = run_to_end(svc, owner, job_id)  # CREATE TABLE of an existing table fails, retried, fails
    assert states(second) == {"make": "failed", "again": "skipped"}
    assert second.tasks[0]["attempts"] == 1


def test_a_select_task_keeps_its_rows_as_output(svc: Services, owner: Principal) -> None:
    job_id = create(svc, owner, "peek", [sql_task("look", "SELECT id AS n FROM range(3)")])
    run = run_to_end(svc, owner, job_id)
    task = run.tasks[0]
    assert task["values"] == {"row_count": 3}
    assert task["result"]["output"]["rows"] == [[0], [1], [2]]


def test_python_tasks_are_accepted_but_refused_when_a_run_reaches_them(svc: Services, owner: Principal) -> None:
    job_id = create(
        svc,
        owner,
        "python_first",
        [
            {"task_key": "nb", "kind": "python", "config": {"code": "print(1)"}, "max_retries": 3},
            sql_task("after", "SELECT 1", "nb"),
        ],
    )
    run = run_to_end(svc, owner, job_id)
    assert states(run) == {"nb": "failed", "after": "skipped"}
    assert (run.tasks[0]["error_code"], run.tasks[0]["attempts"]) == ("task_kind_unavailable", 1)


def test_no_more_task_runs_than_the_tenant_limit_run_at_once(svc: Services, owner: Principal) -> None:
    tasks = [
        sql_task(f"t{i}", f"CREATE OR REPLACE TABLE silver.t{i} AS SELECT count(*) AS n FROM range(3000000)")
        for i in range(6)
    ]
    job_id = create(svc, owner, "wide", tasks)
    run = run_to_end(svc, owner, job_id)
    assert run.state == "succeeded"
    spans = sorted((t["started_at"], t["finished_at"]) for t in run.tasks)
    most = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    assert most <= 2


def test_a_chain_run_in_this_process_is_followed_without_reading_the_store_for_each_task(
    svc: Services, owner: Principal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "_ROUND_SECONDS", 60.0)  # no timed reads: only what the coordinator needs
    reads = 0
    read = runs_repo.active_children

    def counted(*args: object, **kwargs: object) -> tuple[dict[str, str], int]:
        nonlocal reads
        reads += 1
        return read(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(runs_repo, "active_children", counted)
    tasks = [sql_task("c0", "CREATE OR REPLACE TABLE silver.c0 AS SELECT 0 AS n")]
    tasks += [
        sql_task(f"c{i}", f"CREATE OR REPLACE TABLE silver.c{i} AS SELECT n + 1 AS n FROM silver.c{i - 1}", f"c{i - 1}")
        for i in range(1, 20)
    ]
    run = run_to_end(svc, owner, create(svc, owner, "chain20", tasks))
    assert run.state == "succeeded", run.tasks
    assert _rows(svc, owner, "SELECT n FROM silver.c19") == [[19]]
    assert reads <= 2  # the first look (a job run may be resumed with tasks already run), not one per task


def test_unknown_parameters_are_refused(svc: Services, owner: Principal) -> None:
    job_id = create(svc, owner, "strict", [sql_task("a", "SELECT 1")])
    with pytest.raises(Exception) as raised:
        job_runs.start_job_run(svc, owner, job_id, parameters={"nope": "1"})
    assert getattr(raised.value, "code", None) == "invalid_input"


def test_insert_into_appends_and_insert_overwrite_replaces(svc: Services, owner: Principal) -> None:
    job_id = create(
        svc,
        owner,
        "appends",
        [
            sql_task("make", "CREATE OR REPLACE TABLE silver.log AS SELECT id FROM range(3)"),
            sql_task("add", "INSERT INTO silver.log SELECT id FROM range(10, 12)", "make"),
            sql_task("copy", "INSERT OVERWRITE gold.log_copy SELECT count(*) AS n FROM silver.log", "add"),
        ],
    )
    run = run_to_end(svc, owner, job_id)
    assert run.state == "succeeded", run.tasks
    assert _rows(svc, owner, "SELECT id FROM silver.log ORDER BY id") == [[0], [1], [2], [10], [11]]
    assert _rows(svc, owner, "SELECT n FROM gold.log_copy") == [[5]]
    assert [t["result"]["mode"] for t in run.tasks] == ["overwrite", "append", "overwrite"]


def test_a_tasks_log_lines_are_kept_with_its_run(
    svc: Services, owner: Principal, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="servicetsunami")
    job_id = create(svc, owner, "logged", [sql_task("write", "CREATE OR REPLACE TABLE silver.w AS SELECT 1 AS one")])
    run = run_to_end(svc, owner, job_id)
    assert any("overwrite 1 rows into silver.w" in line for line in run.tasks[0]["log"]), run.tasks[0]["log"]
