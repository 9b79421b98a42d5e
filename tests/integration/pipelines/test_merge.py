"""MERGE in sql tasks: an upsert into the caller's silver or gold, on the local engine and on Databricks."""

from __future__ import annotations

import pytest

from servicetsunami.errors import InvalidJob
from servicetsunami.services.catalog.query import query_sql
from servicetsunami.services.container import Services
from servicetsunami.services.pipelines.tasks import plan_sql
from servicetsunami.tenancy import Principal
from tests.helpers import make_principal
from tests.integration.pipelines.support import create, run_to_end, sql_task, states

UPSERT = (
    "MERGE INTO silver.stock AS t USING (SELECT * FROM VALUES (2, 'b2', 20), (3, 'c', 30) AS v(id, name, qty)) AS s "
    "ON t.id = s.id WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
)
SEED = "CREATE OR REPLACE TABLE silver.stock AS SELECT * FROM VALUES (1, 'a', 10), (2, 'b', 11) AS v(id, name, qty)"


def _upserted(svc: Services, who: Principal) -> list[list[object]]:
    job_id = create(svc, who, "upsert", [sql_task("seed", SEED), sql_task("merge", UPSERT, "seed")])
    run = run_to_end(svc, who, job_id)
    assert run.state == "succeeded", run.tasks
    assert states(run) == {"seed": "succeeded", "merge": "succeeded"}
    again = run_to_end(svc, who, job_id)  # an upsert run twice gives the same rows
    assert again.state == "succeeded"
    return query_sql(svc, who, "SELECT id, name, qty FROM silver.stock ORDER BY id").rows


def test_a_merge_task_upserts_the_same_rows_locally_and_on_databricks(
    services: Services, acme: Principal, on_databricks: Services
) -> None:
    remote, _ = make_principal(on_databricks, "acme", "engineer")
    local_rows = _upserted(services, acme)
    assert local_rows == [[1, "a", 10], [2, "b2", 20], [3, "c", 30]]
    assert _upserted(on_databricks, remote) == local_rows


def test_a_merge_from_a_table_is_planned_on_its_keys() -> None:
    plan = plan_sql(
        "MERGE INTO gold.t USING silver.s AS s ON t.a = s.a AND (t.b = s.b) "
        "WHEN NOT MATCHED THEN INSERT * WHEN MATCHED THEN UPDATE SET *",
        "tenant_acme",
    )
    assert plan.mode == "merge" and plan.merge_keys == ("a", "b")
    assert plan.target is not None and (plan.target.catalog, plan.target.schema) == ("tenant_acme", "gold")
    assert [t.table.name for t in plan.query.tables] == ["s"]


@pytest.mark.parametrize(
    "sql",
    [
        "MERGE INTO bronze.t USING silver.s AS s ON t.id = s.id WHEN MATCHED THEN UPDATE SET * "
        "WHEN NOT MATCHED THEN INSERT *",
        "MERGE INTO other.silver.t USING silver.s AS s ON t.id = s.id WHEN MATCHED THEN UPDATE SET * "
        "WHEN NOT MATCHED THEN INSERT *",
        "MERGE INTO silver.t USING other.silver.s AS s ON t.id = s.id WHEN MATCHED THEN UPDATE SET * "
        "WHEN NOT MATCHED THEN INSERT *",
        "MERGE INTO silver.t USING silver.s AS s ON t.id = s.id WHEN MATCHED THEN DELETE",
        "MERGE INTO silver.t USING silver.s AS s ON t.id > s.id WHEN MATCHED THEN UPDATE SET * "
        "WHEN NOT MATCHED THEN INSERT *",
    ],
    ids=["bronze-target", "other-catalog-target", "other-catalog-source", "delete", "not-equal-keys"],
)
def test_a_merge_outside_the_callers_silver_and_gold_or_not_an_upsert_is_refused(
    services: Services, acme: Principal, sql: str
) -> None:
    with pytest.raises(InvalidJob):
        create(services, acme, "bad", [sql_task("m", sql)])
