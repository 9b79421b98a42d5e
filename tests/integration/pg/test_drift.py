"""Schema drift at the source: a new column appears in bronze on the next sync; a widening type
change is applied; an incompatible one stops the sync with an error naming the column, and the
table keeps the version it had."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest
from psycopg import sql

from servicetsunami.connectors.postgres import PostgresSource
from servicetsunami.engines.local.engine import LocalEngine
from servicetsunami.errors import InvalidInput
from servicetsunami.services.ingestion.sync_runner import RunProgress, SyncMode, SyncPlan, SyncRunner
from tests.integration.pg.support import bronze, postgres_config, sync, target

pytestmark = pytest.mark.postgres

OPTIONS: dict[str, Any] = {"cursor_column": "seq", "primary_key": ["id"], "batch_rows": 100}


def _items(pg: psycopg.Connection[Any], schema: str) -> tuple[str, psycopg.sql.Identifier]:
    table = sql.Identifier(schema, "items")
    pg.execute(sql.SQL("CREATE TABLE {} (id integer PRIMARY KEY, seq integer NOT NULL, qty integer)").format(table))
    pg.execute(sql.SQL("INSERT INTO {} SELECT i, i, i * 10 FROM generate_series(1, 3) AS i").format(table))
    return f"{schema}.items", table


@pytest.mark.parametrize("mode", ["incremental_append", "incremental_merge"])
def test_a_column_added_at_the_source_appears_in_bronze_with_null_for_old_rows(
    pg: psycopg.Connection[Any], schema: str, lakehouse: LocalEngine, mode: SyncMode
) -> None:
    stream, table = _items(pg, schema)
    sync(lakehouse, stream, "items", mode, **OPTIONS)
    pg.execute(sql.SQL("ALTER TABLE {} ADD COLUMN note text").format(table))
    pg.execute(sql.SQL("INSERT INTO {} VALUES (4, 4, 40, 'new')").format(table))

    sync(lakehouse, stream, "items", mode, **OPTIONS)

    assert bronze(lakehouse, "SELECT id, qty, note FROM items ORDER BY id") == [
        {"id": 1, "qty": 10, "note": None},
        {"id": 2, "qty": 20, "note": None},
        {"id": 3, "qty": 30, "note": None},
        {"id": 4, "qty": 40, "note": "new"},
    ]


def test_an_incompatible_type_change_stops_the_sync_naming_the_column_and_the_table_keeps_its_version(
    pg: psycopg.Connection[Any], schema: str, lakehouse: LocalEngine
) -> None:
    stream, table = _items(pg, schema)
    before = sync(lakehouse, stream, "items", "incremental_append", **OPTIONS)
    pg.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN qty TYPE text").format(table))
    pg.execute(sql.SQL("INSERT INTO {} VALUES (4, 4, 'forty')").format(table))

    with pytest.raises(InvalidInput) as caught:
        sync(lakehouse, stream, "items", "incremental_append", **OPTIONS)

    assert "'qty'" in caught.value.message
    assert lakehouse.describe(target("items")).version == before.version
    assert bronze(lakehouse, "SELECT id, qty FROM items ORDER BY id") == [
        {"id": 1, "qty": 10},
        {"id": 2, "qty": 20},
        {"id": 3, "qty": 30},
    ]


def test_an_incompatible_type_change_stops_the_sync_even_when_the_values_would_convert(
    pg: psycopg.Connection[Any], schema: str, lakehouse: LocalEngine
) -> None:
    stream, table = _items(pg, schema)
    before = sync(lakehouse, stream, "items", "incremental_append", **OPTIONS)
    pg.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN qty TYPE text").format(table))
    pg.execute(sql.SQL("INSERT INTO {} VALUES (4, 4, '0040')").format(table))

    with pytest.raises(InvalidInput, match="'qty'"):
        sync(lakehouse, stream, "items", "incremental_append", **OPTIONS)

    assert lakehouse.describe(target("items")).version == before.version


@pytest.mark.parametrize("mode", ["incremental_append", "incremental_merge"])
def test_a_widening_type_change_is_applied_and_old_rows_keep_their_values(
    pg: psycopg.Connection[Any], schema: str, lakehouse: LocalEngine, mode: SyncMode
) -> None:
    stream, table = _items(pg, schema)
    sync(lakehouse, stream, "items", mode, **OPTIONS)
    pg.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN qty TYPE bigint").format(table))
    pg.execute(sql.SQL("INSERT INTO {} VALUES (4, 4, 3000000000)").format(table))

    sync(lakehouse, stream, "items", mode, **OPTIONS)

    assert {c.name: c.type for c in lakehouse.describe(target("items")).columns}["qty"] == "BIGINT"
    assert bronze(lakehouse, "SELECT id, qty FROM items ORDER BY id") == [
        {"id": 1, "qty": 10},
        {"id": 2, "qty": 20},
        {"id": 3, "qty": 30},
        {"id": 4, "qty": 3_000_000_000},
    ]


def test_a_column_whose_type_changes_between_batches_of_one_run_is_refused_not_misread(
    pg: psycopg.Connection[Any], schema: str, lakehouse: LocalEngine
) -> None:
    stream, table = _items(pg, schema)
    pg.execute(sql.SQL("INSERT INTO {} SELECT i, i, i * 1000 FROM generate_series(4, 6) AS i").format(table))
    plan = SyncPlan("items", stream, target("items"), "incremental_append", "seq")
    altered = threading.Event()

    def alter_after_the_first_batch(progress: RunProgress) -> None:
        if not altered.is_set():
            altered.set()
            pg.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN qty TYPE text").format(table))

    source = PostgresSource(postgres_config())
    runner = SyncRunner(
        lakehouse, source, plan, run_id="one-run", batch_rows=3, on_progress=alter_after_the_first_batch
    )
    try:
        with pytest.raises(InvalidInput, match="'qty'"):
            runner.run()
    finally:
        source.close()

    assert altered.is_set()
    assert bronze(lakehouse, "SELECT id FROM items WHERE id > 3") == []
