"""The task kinds over real components: a PostgreSQL table synced into bronze, cleaned into silver and
summed into gold by one pipeline, run again without duplicates, and started by another job."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from servicetsunami.services.catalog.query import query_sql
from servicetsunami.services.container import Services
from servicetsunami.services.ingestion import syncs
from servicetsunami.services.transforms import gold, silver
from servicetsunami.tenancy import Principal
from tests.helpers import make_principal
from tests.integration.pipelines.support import create, run_to_end, states
from tests.integration.test_pg_sources import connect, pg_dsn


@pytest.fixture
def orders() -> Iterator[str]:
    name = f"orders_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_dsn(), autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE public.{name} (id bigint PRIMARY KEY, amount numeric(12,2), updated_at timestamptz)"
        )
        conn.execute(f"INSERT INTO public.{name} SELECT i, i, now() FROM generate_series(1, 100) i")
    yield name
    with psycopg.connect(pg_dsn(), autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS public.{name}")


@pytest.fixture
def owner(services: Services) -> Principal:
    return make_principal(services, "acme", role="admin")[0]


def test_sync_transform_and_gold_refresh_run_as_one_pipeline_and_again_without_duplicates(
    services: Services, owner: Principal, orders: str
) -> None:
    cid = connect(services, owner)
    first = syncs.sync_table_to_bronze(services, owner, cid, f"public.{orders}", target_table="orders", wait_seconds=60)
    assert first.status == "succeeded", first
    silver.transform_to_silver(services, owner, "orders")
    gold.create_gold_table(
        services, owner, "orders_total", "SELECT count(*) AS n, sum(amount) AS total FROM silver.orders"
    )
    with psycopg.connect(pg_dsn(), autocommit=True) as conn:
        conn.execute(f"INSERT INTO public.{orders} SELECT i, i, now() FROM generate_series(101, 150) i")
    job_id = create(
        services,
        owner,
        "orders_daily",
        [
            {
                "task_key": "sync",
                "kind": "sync",
                "config": {
                    "connection_id": cid,
                    "table_name": f"public.{orders}",
                    "sync_mode": "incremental_merge",
                    "target_table": "orders",
                },
            },
            {"task_key": "clean", "kind": "transform", "depends_on": ["sync"], "config": {"bronze_table": "orders"}},
            {"task_key": "sum", "kind": "gold_refresh", "depends_on": ["clean"], "config": {"table": "orders_total"}},
        ],
    )
    run = run_to_end(services, owner, job_id)
    assert set(states(run).values()) == {"succeeded"}, run.tasks
    assert query_sql(services, owner, "SELECT n, total FROM gold.orders_total").rows == [[150, "11325.00"]]
    by_key = {t["task_key"]: t for t in run.tasks}
    assert by_key["sync"]["values"]["sync_run_id"]
    assert by_key["clean"]["values"]["table"] == "silver.orders"

    parent = create(
        services,
        owner,
        "orders_wrapper",
        [{"task_key": "daily", "kind": "run_job", "config": {"job_id": job_id}}],
    )
    wrapped = run_to_end(services, owner, parent)
    assert states(wrapped) == {"daily": "succeeded"}
    child_run = wrapped.tasks[0]["values"]["job_run_id"]
    assert child_run != run.run_id
    assert query_sql(services, owner, "SELECT n, total FROM gold.orders_total").rows == [[150, "11325.00"]]
