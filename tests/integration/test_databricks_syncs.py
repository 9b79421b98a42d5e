"""A PostgreSQL sync into bronze on the Databricks engine (the fake workspace): staged Parquet files
uploaded to the landing volume and loaded with COPY INTO / MERGE, the cursor kept in the commit
ledger, so an incremental run reads only what changed."""

from __future__ import annotations

import psycopg
import pytest

from servicetsunami.services.catalog.query import query_sql
from servicetsunami.services.container import Services
from servicetsunami.services.ingestion import syncs
from tests.helpers import make_principal
from tests.integration.test_pg_sources import connect, pg_dsn, pg_table

__all__ = ["pg_table"]  # the fixture, used by name below

pytestmark = pytest.mark.postgres


def test_an_incremental_merge_sync_lands_every_row_once_on_databricks(on_databricks: Services, pg_table: str) -> None:
    who, _ = make_principal(on_databricks, "acme", "admin")
    cid = connect(on_databricks, who)
    first = syncs.sync_table_to_bronze(
        on_databricks, who, cid, pg_table, sync_mode="incremental_merge", wait_seconds=120
    )
    assert first.status == "succeeded", first.error
    assert first.rows == 3000
    with psycopg.connect(pg_dsn(), autocommit=True) as conn:
        conn.execute(f"UPDATE public.{pg_table} SET note = 'changed', updated_at = now() WHERE id <= 30")
    second = syncs.sync_table_to_bronze(
        on_databricks, who, cid, pg_table, sync_mode="incremental_merge", wait_seconds=120
    )
    assert second.status == "succeeded", second.error
    assert second.rows == 30
    rows = query_sql(
        on_databricks, who, f"SELECT count(*), count(DISTINCT id), count_if(note = 'changed') FROM {pg_table}"
    )
    assert rows.rows == [[3000, 3000, 30]]
    again = syncs.sync_table_to_bronze(
        on_databricks, who, cid, pg_table, sync_mode="incremental_merge", wait_seconds=120
    )
    assert again.status == "succeeded" and again.rows == 0
