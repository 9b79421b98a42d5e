"""Jobs on the Databricks engine: a job compiles to a Jobs API 2.2 job whose SQL lives in workspace
files, its runs are the workspace's runs (the fake executes them on its local engine), and the doors'
answers are the same as locally."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.service import jobs as dbx_jobs
from databricks.sdk.service.workspace import ImportFormat

from servicetsunami.errors import NotSupported
from servicetsunami.services.catalog.query import query_sql
from servicetsunami.services.container import Services
from servicetsunami.services.ingestion import uploads
from servicetsunami.services.notebooks import notebooks
from servicetsunami.services.notebooks import workspace as notebook_workspace
from servicetsunami.services.pipelines import job_runs, jobs
from servicetsunami.settings import DatabricksSettings
from servicetsunami.tenancy import Principal
from tests.fakes.databricks.jobs import jobs_of
from tests.fakes.databricks.server import FakeDatabricks
from tests.helpers import make_principal
from tests.integration.pipelines.support import DEADLINE, create, run_to_end, sql_task, states, wait_end

ORDERS = b"order_id,customer,amount\n1,ada,10\n2,bob,5\n3,ada,7\n4,cy,1\n"

PIPELINE = [
    sql_task(
        "clean",
        "CREATE OR REPLACE TABLE silver.orders AS SELECT order_id, upper(customer) AS customer, amount "
        "FROM bronze.orders WHERE amount > 1",
    ),
    sql_task(
        "spend",
        "CREATE OR REPLACE TABLE gold.spend AS SELECT customer, sum(amount) AS total FROM silver.orders "
        "GROUP BY customer",
        "clean",
    ),
    sql_task("extra", "INSERT INTO gold.spend SELECT 'ZED' AS customer, 0 AS total", "spend"),
    sql_task("peek", "SELECT count(*) AS n FROM gold.spend", "extra"),
]


def _client(settings: DatabricksSettings) -> WorkspaceClient:
    assert settings.token is not None
    return WorkspaceClient(host=settings.host, token=settings.token.get_secret_value(), auth_type="pat")


def _tables(svc: Services, who: Principal) -> tuple[list[list[Any]], list[list[Any]]]:
    silver = query_sql(svc, who, "SELECT order_id, customer, amount FROM silver.orders ORDER BY 1").rows
    gold = query_sql(svc, who, "SELECT customer, total FROM gold.spend ORDER BY 1").rows
    return silver, gold


def test_the_same_job_gives_the_same_tables_locally_and_on_databricks(
    services: Services,
    acme: Principal,
    on_databricks: Services,
    fake_workspace: DatabricksSettings,
    databricks_fake: FakeDatabricks,
) -> None:
    remote, _ = make_principal(on_databricks, "acme", "engineer")
    answers = []
    for svc, who in ((services, acme), (on_databricks, remote)):
        uploads.upload_file(svc, who, file_name="orders.csv", dataset_name="orders", content=ORDERS)
        job_id = create(svc, who, "orders", PIPELINE)
        run = run_to_end(svc, who, job_id)
        assert run.state == "succeeded", run.tasks
        assert states(run) == dict.fromkeys(["clean", "spend", "extra", "peek"], "succeeded")
        answers.append(_tables(svc, who))
    assert answers[0] == answers[1]
    assert answers[1][1] == [["ADA", 17], ["BOB", 5], ["ZED", 0]]

    # The workspace holds the compiled job: SQL in workspace files, dependencies, run_if.
    job = next(iter(jobs_of(databricks_fake.state(fake_workspace.token.get_secret_value())).jobs.values()))  # type: ignore[union-attr]
    tasks = {t["task_key"]: t for t in job["settings"]["tasks"]}
    assert tasks["spend"]["depends_on"] == [{"task_key": "clean"}]
    assert tasks["spend"]["run_if"] == "ALL_SUCCESS"
    path = tasks["extra"]["sql_task"]["file"]["path"]
    assert path.startswith("/Shared/servicetsunami/") and path.endswith("/extra.sql")
    text = base64.b64decode(str(_client(fake_workspace).workspace.export(path).content)).decode()
    assert text.startswith("INSERT INTO `") and "`gold`.`spend`" in text


def test_a_failed_task_skips_its_dependants_and_a_repair_runs_them_again(on_databricks: Services) -> None:
    who, _ = make_principal(on_databricks, "acme", "engineer")
    job_id = create(
        on_databricks,
        who,
        "repairable",
        [
            sql_task("first", "CREATE OR REPLACE TABLE silver.later AS SELECT * FROM silver.not_yet"),
            sql_task("second", "CREATE OR REPLACE TABLE gold.later AS SELECT count(*) AS n FROM silver.later", "first"),
            sql_task(
                "cleanup",
                "CREATE OR REPLACE TABLE gold.cleanup AS SELECT 1 AS ran",
                "first",
                run_if="at_least_one_failed",
            ),
        ],
    )
    run = run_to_end(on_databricks, who, job_id)
    assert run.state == "failed" and run.error_code == "job_run_failed"
    assert states(run) == {"first": "failed", "second": "skipped", "cleanup": "succeeded"}
    by_key = {t["task_key"]: t for t in run.tasks}
    assert by_key["second"]["error_code"] == "upstream_failed"
    assert "not_yet" in (by_key["first"]["error"] or "")

    uploads.upload_file(on_databricks, who, file_name="n.csv", dataset_name="seed", content=b"x\n1\n2\n")
    query_sql(on_databricks, who, "SELECT count(*) FROM bronze.seed")
    jobs.update_job(
        on_databricks,
        who,
        job_id,
        {
            "name": "repairable",
            "tasks": [
                sql_task("first", "CREATE OR REPLACE TABLE silver.later AS SELECT * FROM bronze.seed"),
                sql_task(
                    "second", "CREATE OR REPLACE TABLE gold.later AS SELECT count(*) AS n FROM silver.later", "first"
                ),
                sql_task(
                    "cleanup",
                    "CREATE OR REPLACE TABLE gold.cleanup AS SELECT 1 AS ran",
                    "first",
                    run_if="at_least_one_failed",
                ),
            ],
        },
    )
    repaired = job_runs.repair_job_run(on_databricks, who, run.run_id, wait_seconds=0)
    repaired = wait_end(on_databricks, who, repaired.run_id)
    assert repaired.state == "succeeded", repaired.tasks
    assert repaired.repair == 1
    assert states(repaired) == {"first": "succeeded", "second": "succeeded", "cleanup": "skipped"}
    assert query_sql(on_databricks, who, "SELECT n FROM gold.later").rows == [[2]]


def test_a_canceled_run_stops_its_running_query_on_the_workspace(on_databricks: Services) -> None:
    who, _ = make_principal(on_databricks, "acme", "engineer")
    job_id = create(
        on_databricks,
        who,
        "endless",
        [
            sql_task("big", "SELECT count(*) FROM range(1000000000) a CROSS JOIN range(1000000000) b"),
            sql_task("after", "CREATE OR REPLACE TABLE gold.after AS SELECT 1 AS x", "big"),
        ],
    )
    run_id = job_runs.start_job_run(on_databricks, who, job_id)
    end = time.monotonic() + DEADLINE
    while states(job_runs.get_job_run(on_databricks, who, run_id)).get("big") != "running":
        assert time.monotonic() < end, "the task never started"
        on_databricks.launcher.wait_change(0.1)
    started = time.monotonic()
    canceled = job_runs.cancel_job_run(on_databricks, who, run_id, wait_seconds=DEADLINE)
    assert canceled.state == "canceled"
    assert time.monotonic() - started < 30
    assert states(canceled) == {"big": "canceled", "after": "canceled"}


def test_kinds_the_workspace_cannot_run_are_refused_when_the_job_is_saved(on_databricks: Services) -> None:
    who, _ = make_principal(on_databricks, "acme", "engineer")
    with pytest.raises(NotSupported):
        create(on_databricks, who, "t", [{"task_key": "t", "kind": "gold_refresh", "config": {"table": "gold.x"}}])
    with pytest.raises(NotSupported):
        create(on_databricks, who, "p", [sql_task("p", "SELECT {{job.parameters.n}} AS n")], parameters={"n": "1"})
    assert jobs.list_jobs(on_databricks, who) == []


def test_a_notebook_task_whose_notebook_is_missing_fails_with_a_clear_reason(on_databricks: Services) -> None:
    who, _ = make_principal(on_databricks, "acme", "engineer")
    job_id = create(
        on_databricks,
        who,
        "seeds",
        [{"task_key": "extract", "kind": "notebook", "config": {"notebook_path": "etl/extract"}}],
        schedule={"quartz_cron_expression": "0 0 2 * * ?", "timezone_id": "Europe/Paris"},
    )
    job = jobs.get_job(on_databricks, who, job_id)
    assert len(job.next_fire_times) == 5 and job.next_fire_times[0].hour in (0, 1)
    run = run_to_end(on_databricks, who, job_id)
    assert run.state == "failed"
    task = run.tasks[0]
    assert task["state"] == "failed" and "etl/extract" in (task["error"] or "")
    assert task["error"].startswith("RESOURCE_NOT_FOUND")


def test_a_notebook_task_names_the_notebook_where_publish_notebook_put_it(on_databricks: Services) -> None:
    who, _ = make_principal(on_databricks, "acme", "engineer")
    notebooks.create_notebook(on_databricks, who, "/etl/extract", cells=[{"cell_type": "code", "source": "x = 1"}])
    where = notebook_workspace.publish_notebook(on_databricks, who, "/etl/extract").workspace_path
    job_id = create(
        on_databricks,
        who,
        "seeds",
        [{"task_key": "extract", "kind": "notebook", "config": {"notebook_path": "etl/extract"}}],
    )
    run = run_to_end(on_databricks, who, job_id)
    error = run.tasks[0]["error"] or ""
    assert where in error and not error.startswith("RESOURCE_NOT_FOUND")  # found; the fake runs no notebook


def test_pausing_and_deleting_a_job_change_its_workspace_job(
    on_databricks: Services, fake_workspace: DatabricksSettings
) -> None:
    who, _ = make_principal(on_databricks, "acme", "engineer")
    job_id = create(
        on_databricks,
        who,
        "nightly",
        [sql_task("one", "CREATE OR REPLACE TABLE gold.one AS SELECT 1 AS x")],
        schedule={"quartz_cron_expression": "0 15 3 ? * MON-FRI", "timezone_id": "America/New_York"},
    )
    c = _client(fake_workspace)
    (remote,) = list(c.jobs.list())
    assert remote.job_id is not None
    schedule = c.jobs.get(remote.job_id).settings.schedule  # type: ignore[union-attr]
    assert schedule is not None and schedule.quartz_cron_expression == "0 15 3 ? * MON-FRI"
    assert schedule.timezone_id == "America/New_York"
    jobs.set_paused(on_databricks, who, job_id, paused=True)
    paused = c.jobs.get(remote.job_id).settings.schedule  # type: ignore[union-attr]
    assert paused is not None and paused.pause_status == dbx_jobs.PauseStatus.PAUSED
    assert jobs.get_job(on_databricks, who, job_id).next_fire_times == []
    jobs.delete_job(on_databricks, who, job_id)
    assert list(c.jobs.list()) == []


def test_the_fake_runs_a_job_end_to_end_through_the_unmodified_sdk(
    fake_workspace: DatabricksSettings, on_databricks: Services
) -> None:
    who, _ = make_principal(on_databricks, "acme", "engineer")  # makes the catalog and its schemas
    c = _client(fake_workspace)
    folder = "/Workspace/Shared/sdk"
    c.workspace.mkdirs(folder)
    sql = f"CREATE OR REPLACE TABLE `{who.catalog}`.`gold`.`sdk` AS SELECT id FROM range(5)"
    c.workspace.import_(f"{folder}/make.sql", content=base64.b64encode(sql.encode()).decode(), format=ImportFormat.AUTO)
    task = dbx_jobs.Task(
        task_key="make",
        sql_task=dbx_jobs.SqlTask(
            warehouse_id="wh-small",
            file=dbx_jobs.SqlTaskFile(path=f"{folder}/make.sql", source=dbx_jobs.Source.WORKSPACE),
        ),
    )
    job_id = c.jobs.create(
        name="sdk",
        tasks=[task],
        schedule=dbx_jobs.CronSchedule(quartz_cron_expression="0 0 2 * * ?", timezone_id="UTC"),
    ).job_id
    assert job_id is not None
    assert c.jobs.get(job_id).settings.schedule.quartz_cron_expression == "0 0 2 * * ?"  # type: ignore[union-attr]
    first = c.jobs.run_now(job_id, idempotency_token="once").result(timeout=_timeout())
    again = c.jobs.run_now(job_id, idempotency_token="once").result(timeout=_timeout())
    assert again.run_id == first.run_id
    assert first.state is not None and first.state.result_state == dbx_jobs.RunResultState.SUCCESS
    assert first.tasks is not None and first.tasks[0].state.result_state == dbx_jobs.RunResultState.SUCCESS  # type: ignore[union-attr]
    assert query_sql(on_databricks, who, "SELECT count(*) FROM gold.sdk").rows == [[5]]

    other = c.jobs.create(name="other", tasks=[task]).job_id
    assert other is not None
    c.jobs.run_now(other).result(timeout=_timeout())
    listed = list(c.jobs.list_runs(job_id=job_id))
    assert [r.run_id for r in listed] == [first.run_id]
    assert len(list(c.jobs.list_runs())) == 2

    repaired = c.jobs.repair_run(first.run_id, rerun_tasks=["make"]).result(timeout=_timeout())  # type: ignore[arg-type]
    assert repaired.state.result_state == dbx_jobs.RunResultState.SUCCESS  # type: ignore[union-attr]
    assert [h.type for h in repaired.repair_history or []] == [
        dbx_jobs.RepairHistoryItemType.ORIGINAL,
        dbx_jobs.RepairHistoryItemType.REPAIR,
    ]
    c.jobs.delete(other)
    assert [j.job_id for j in c.jobs.list()] == [job_id]


def _timeout() -> Any:
    from datetime import timedelta

    return timedelta(seconds=DEADLINE)
