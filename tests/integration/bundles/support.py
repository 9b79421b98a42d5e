"""What the bundle tests share: a pipeline with a sync, a transform, a SQL task and a notebook task over
a real PostgreSQL table, run once so its transform has a stored statement."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg

from servicetsunami.services.container import Services
from servicetsunami.services.ingestion import syncs
from servicetsunami.services.notebooks import notebooks
from servicetsunami.services.pipelines import jobs
from servicetsunami.services.transforms import silver
from servicetsunami.tenancy import Principal
from tests.integration.test_pg_sources import connect, pg_dsn

NOTEBOOK_CELLS = [
    {"source": "dbutils.widgets.text('min_amount', '10')", "tags": ["parameters"]},
    {"source": "import pandas as pd\nlimit = int(dbutils.widgets.get('min_amount'))"},
    {
        "source": "big = spark.sql(f'SELECT id, amount FROM silver.orders WHERE amount >= {limit}')\n"
        "big.write.mode('overwrite').saveAsTable('gold.big_orders')"
    },
    {"source": "dbutils.notebook.exit(str(spark.table('gold.big_orders').count()))"},
]


@dataclass
class Pipeline:
    job_id: str
    notebook_id: str
    source_table: str


@contextmanager
def pipeline(svc: Services, owner: Principal) -> Iterator[Pipeline]:
    """The pipeline ``orders_daily`` and its notebook ``/reports/big_orders`` (module docstring)."""
    name = f"orders_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE TABLE public.{name} (id bigint PRIMARY KEY, amount numeric(12,2))")
        conn.execute(f"INSERT INTO public.{name} SELECT i, i FROM generate_series(1, 40) i")
    try:
        cid = connect(svc, owner)
        first = syncs.sync_table_to_bronze(svc, owner, cid, f"public.{name}", target_table="orders", wait_seconds=60)
        assert first.status == "succeeded", first
        silver.transform_to_silver(svc, owner, "orders")
        made = notebooks.create_notebook(svc, owner, "/reports/big_orders", cells=NOTEBOOK_CELLS)
        job = jobs.create_job(
            svc,
            owner,
            {
                "name": "orders_daily",
                "parameters": {"min_amount": "10"},
                "schedule": {"quartz_cron_expression": "0 30 2 * * ?", "timezone_id": "Europe/Berlin"},
                "tasks": [
                    {
                        "task_key": "sync",
                        "kind": "sync",
                        "config": {"connection_id": cid, "table_name": f"public.{name}", "target_table": "orders"},
                    },
                    {
                        "task_key": "clean",
                        "kind": "transform",
                        "depends_on": ["sync"],
                        "config": {"bronze_table": "orders"},
                        "max_retries": 2,
                        "min_retry_interval_seconds": 30,
                    },
                    {
                        "task_key": "totals",
                        "kind": "sql",
                        "depends_on": ["clean"],
                        "config": {"sql": "CREATE OR REPLACE TABLE gold.totals AS SELECT count(*) AS n FROM orders"},
                        "timeout_seconds": 600,
                    },
                    {
                        "task_key": "report",
                        "kind": "notebook",
                        "depends_on": ["clean"],
                        "config": {
                            "notebook_path": "/reports/big_orders",
                            "base_parameters": {"min_amount": "{{job.parameters.min_amount}}"},
                        },
                    },
                ],
            },
        )
        yield Pipeline(job.job_id, made.notebook_id, name)
    finally:
        with psycopg.connect(pg_dsn(), autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS public.{name}")
