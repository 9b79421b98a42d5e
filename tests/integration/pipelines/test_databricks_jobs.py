"""Jobs on the Databricks engine: a job compiles to a Jobs API 2.2 job whose SQL lives in workspace
files, its runs are the workspace's runs (the fake executes them on its local engine), and the doors'
answers are the same as locally."""

from __future__ import annotations

import base64
import time
from typing import Any

import psycopg
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.service import jobs as dbx_jobs
from databricks.sdk.service.workspace import ImportFormat

from servicetsunami.errors import Conflict
from servicetsunami.services.catalog.query import query_sql
from servicetsunami.services.container import Services
from servicetsunami.services.ingestion import syncs, uploads
from servicetsunami.services.notebooks import notebooks
from servicetsunami.services.notebooks import workspace as notebook_workspace
from servicetsunami.services.pipelines import job_runs, jobs
from servicetsunami.services.transforms import gold, silver
from servicetsunami.settings import DatabricksSettings
from servicetsunami.tenancy import Principal
from tests.fakes.databricks.jobs import jobs_of
from tests.fakes.databricks.server import FakeDatabricks
from tests.helpers import make_principal
from tests.integration.pipelines.support import DEADLINE, create, run_to_end, sql_task, states, wait_end
from tests.integration.test_pg_sources import connect, pg_dsn, pg_table

__all__ = ["pg_table"]  # the fixture, used by name below

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


@pytest.mark.postgres
def test_a_sync_transform_and_gold_pipeline_runs_in_the_service_on_databricks_with_the_same_tables(
    services: Services,
    on_databricks: Services,
    fake_workspace: DatabricksSettings,
    databricks_fake: FakeDatabricks,
    pg_table: str,
) -> None:
    answers = []
    for svc in (services, on_databricks):
        who, _ = make_principal(svc, "acme", "admin")
        cid = connect(svc, who)
        first = syncs.sync_table_to_bronze(svc, who, cid, pg_table, target_table="events", wait_seconds=120)
        assert first.status == "succeeded", first.error
        silver.transform_to_silver(svc, who, "events")
        gold.create_gold_table(svc, who, "events_total", "SELECT count(*) AS n, sum(id) AS ids FROM silver.events")
        job_id = create(
            svc,
            who,
            "events_daily",
            [
                {
                    "task_key": "sync",
                    "kind": "sync",
                    "config": {"connection_id": cid, "table_name": f"public.{pg_table}", "target_table": "events"},
                },
                {
                    "task_key": "clean",
                    "kind": "transform",
                    "depends_on": ["sync"],
                    "config": {"bronze_table": "events"},
                },
                {
                    "task_key": "sum",
                    "kind": "gold_refresh",
                    "depends_on": ["clean"],
                    "config": {"table": "events_total"},
                },
                sql_task(
                    "top", "CREATE OR REPLACE TABLE gold.top AS SELECT max(id) AS top FROM silver.events", "clean"
                ),
            ],
            schedule={"quartz_cron_expression": "0 0 4 * * ?", "timezone_id": "UTC"},
        )
        job = jobs.get_job(svc, who, job_id)
        assert job.orchestrator == "service" and job.databricks_job_id is None
        assert len(job.next_fire_times) == 5  # the service's ticker fires it on both engines
        with psycopg.connect(pg_dsn(), autocommit=True) as conn:
            conn.execute(
                f"INSERT INTO public.{pg_table} (id, note, updated_at) "
                "SELECT 1000000 + n, 'late', now() FROM generate_series(1, 5) n"
            )
        run = run_to_end(svc, who, job_id)
        assert set(states(run).values()) == {"succeeded"}, run.tasks
        with psycopg.connect(pg_dsn(), autocommit=True) as conn:
            conn.execute(f"DELETE FROM public.{pg_table} WHERE id > 1000000")
        answers.append(
            (
                query_sql(svc, who, "SELECT n, ids FROM gold.events_total").rows,
                query_sql(svc, who, "SELECT top FROM gold.top").rows,
            )
        )
    assert answers[0] == answers[1]
    assert answers[1][0][0][0] == 3005
    assert answers[1][1] == [[1000005]]
    local_job = jobs.list_jobs(on_databricks, make_principal(on_databricks, "acme", "admin")[0])[0]
    assert local_job.orchestrator_reason is not None and "'sync'" in local_job.orchestrator_reason
    assert jobs_of(databricks_fake.state(fake_workspace.token.get_secret_value())).jobs == {}  # type: ignore[union-attr]


def test_a_job_moves_between_the_workspace_and_the_service_as_its_tasks_change(
    on_databricks: Services, fake_workspace: DatabricksSettings
) -> None:
    who, _ = make_principal(on_databricks, "acme", "engineer")
    c = _client(fake_workspace)
    job_id = create(on_databricks, who, "moves", [sql_task("one", "CREATE OR REPLACE TABLE gold.one AS SELECT 1 AS x")])
    first = jobs.get_job(on_databricks, who, job_id)
    assert first.orchestrator == "databricks" and first.databricks_job_id is not None
    assert [j.job_id for j in c.jobs.list()] == [first.databricks_job_id]

    templated = [sql_task("one", "CREATE OR REPLACE TABLE gold.one AS SELECT {{job.parameters.n}} AS x")]
    moved = jobs.update_job(on_databricks, who, job_id, {"name": "moves", "tasks": templated, "parameters": {"n": "7"}})
    assert moved.orchestrator == "service" and moved.databricks_job_id is None
    assert "{{...}}" in (moved.orchestrator_reason or "")
    assert list(c.jobs.list()) == []
    run = run_to_end(on_databricks, who, job_id, n="8")
    assert run.state == "succeeded", run.tasks
    assert query_sql(on_databricks, who, "SELECT x FROM gold.one").rows == [[8]]

    back = jobs.update_job(on_databricks, who, job_id, {"name": "moves", "tasks": PIPELINE[:1]})
    assert back.orchestrator == "databricks" and back.orchestrator_reason is None
    assert [j.job_id for j in c.jobs.list()] == [back.databricks_job_id]


def test_a_workspace_job_that_starts_another_keeps_it_in_the_workspace(on_databricks: Services) -> None:
    who, _ = make_principal(on_databricks, "acme", "engineer")
    child = create(on_databricks, who, "child", [sql_task("one", "CREATE OR REPLACE TABLE gold.one AS SELECT 1 AS x")])
    parent = create(on_databricks, who, "parent", [{"task_key": "c", "kind": "run_job", "config": {"job_id": child}}])
    assert jobs.get_job(on_databricks, who, parent).orchestrator == "databricks"
    python = [{"task_key": "p", "kind": "python", "config": {"code": "print(1)"}}]
    with pytest.raises(Conflict):
        jobs.update_job(on_databricks, who, child, {"name": "child", "tasks": python})
    assert jobs.get_job(on_databricks, who, child).orchestrator == "databricks"

    jobs.delete_job(on_databricks, who, parent)
    moved = jobs.update_job(on_databricks, who, child, {"name": "child", "tasks": python})
    assert moved.orchestrator == "service"
    again = create(on_databricks, who, "parent", [{"task_key": "c", "kind": "run_job", "config": {"job_id": child}}])
    assert jobs.get_job(on_databricks, who, again).orchestrator == "service"  # its child runs here
    run = run_to_end(on_databricks, who, again)
    assert run.state == "failed" and states(run) == {"c": "failed"}  # python tasks run nowhere, on both engines


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
