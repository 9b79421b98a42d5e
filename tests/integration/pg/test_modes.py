"""Sync modes against a real table: full refresh replaces, incremental append adds what is new,
incremental merge upserts changes, and the merge lookback catches rows committed late."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
import pytest
from psycopg import sql

from servicetsunami.engines.local.engine import LocalEngine
from tests.integration.pg.support import bronze, sync, target

pytestmark = pytest.mark.postgres

T0 = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)


def _events(pg: psycopg.Connection[Any], schema: str, rows: int) -> str:
    """``schema.events`` with ``rows`` rows; ``updated_at`` is shared by groups of three rows."""
    table = sql.Identifier(schema, "events")
    pg.execute(
        sql.SQL(
            "CREATE TABLE {} (id bigint PRIMARY KEY, seq bigint NOT NULL, val text, updated_at timestamptz)"
        ).format(table)
    )
    pg.execute(
        sql.SQL(
            "INSERT INTO {} SELECT i, i, 'v' || i, %s::timestamptz + (i / 3) * interval '1 minute' "
            "FROM generate_series(1, %s) AS i"
        ).format(table),
        [T0, rows],
    )
    return f"{schema}.events"


def _source_rows(pg: psycopg.Connection[Any], stream: str) -> list[dict[str, Any]]:
    schema, table = stream.split(".")
    cur = pg.execute(sql.SQL("SELECT id, val, updated_at FROM {} ORDER BY id").format(sql.Identifier(schema, table)))
    return [{"id": i, "val": v, "updated_at": u} for i, v, u in cur.fetchall()]


def _counts(engine: LocalEngine, table: str) -> tuple[int, int]:
    row = bronze(engine, f"SELECT count(*) AS n, count(DISTINCT id) AS ids FROM {table}")[0]
    return row["n"], row["ids"]


def test_a_second_full_refresh_replaces_the_table_without_duplicates(
    pg: psycopg.Connection[Any], schema: str, lakehouse: LocalEngine
) -> None:
    stream = _events(pg, schema, 30)
    first = sync(lakehouse, stream, "events")
    pg.execute(sql.SQL("DELETE FROM {} WHERE id > 25").format(sql.Identifier(schema, "events")))
    pg.execute(sql.SQL("UPDATE {} SET val = 'changed' WHERE id = 1").format(sql.Identifier(schema, "events")))

    second = sync(lakehouse, stream, "events")

    assert (first.rows, second.rows) == (30, 25)
    assert (first.version, second.version) == (0, 1)
    assert _counts(lakehouse, "events") == (25, 25)
    assert bronze(lakehouse, "SELECT id, val, updated_at FROM events ORDER BY id") == _source_rows(pg, stream)


def test_incremental_append_lands_every_row_once_in_many_batches_then_only_new_rows(
    pg: psycopg.Connection[Any], schema: str, lakehouse: LocalEngine
) -> None:
    stream = _events(pg, schema, 50)
    first = sync(lakehouse, stream, "events", "incremental_append", cursor_column="seq", batch_rows=7)
    assert first.rows == 50 and first.batches == 8 and first.cursor == 50
    pg.execute(
        sql.SQL("INSERT INTO {} SELECT i, i, 'new', now() FROM generate_series(51, 60) AS i").format(
            sql.Identifier(schema, "events")
        )
    )

    second = sync(lakehouse, stream, "events", "incremental_append", cursor_column="seq", batch_rows=7)
    idle = sync(lakehouse, stream, "events", "incremental_append", cursor_column="seq", batch_rows=7)

    assert (second.rows, second.batches, second.cursor) == (10, 2, 60)
    assert (idle.rows, idle.batches) == (0, 0)
    assert lakehouse.describe(target("events")).version == second.version
    assert _counts(lakehouse, "events") == (60, 60)
    assert bronze(lakehouse, "SELECT id, val, updated_at FROM events ORDER BY id") == _source_rows(pg, stream)


def test_incremental_merge_picks_up_updates_and_inserts_in_many_batches(
    pg: psycopg.Connection[Any], schema: str, lakehouse: LocalEngine
) -> None:
    stream = _events(pg, schema, 50)
    options: dict[str, Any] = {"cursor_column": "updated_at", "primary_key": ["id"], "batch_rows": 7}
    first = sync(lakehouse, stream, "events", "incremental_merge", **options)
    events = sql.Identifier(schema, "events")
    pg.execute(sql.SQL("UPDATE {} SET val = 'updated', updated_at = now() WHERE id % 10 = 3").format(events))
    pg.execute(sql.SQL("INSERT INTO {} SELECT i, i, 'new', now() FROM generate_series(51, 53) AS i").format(events))

    second = sync(lakehouse, stream, "events", "incremental_merge", **options)

    assert first.rows == 50 and first.batches > 5
    assert second.rows == 8  # five updated rows and three new ones share one cursor value
    assert _counts(lakehouse, "events") == (53, 53)
    assert bronze(lakehouse, "SELECT id, val, updated_at FROM events ORDER BY id") == _source_rows(pg, stream)


def test_merge_lookback_rereads_a_row_committed_late_with_an_older_cursor(
    pg: psycopg.Connection[Any], schema: str, lakehouse: LocalEngine
) -> None:
    stream = _events(pg, schema, 30)
    options: dict[str, Any] = {"cursor_column": "updated_at", "primary_key": ["id"], "batch_rows": 100}
    sync(lakehouse, stream, "with_lookback", "incremental_merge", lookback=dt.timedelta(hours=1), **options)
    sync(lakehouse, stream, "without_lookback", "incremental_merge", **options)
    late = T0 + dt.timedelta(minutes=5)  # older than the committed cursor (T0 + 10 minutes)
    pg.execute(sql.SQL("INSERT INTO {} VALUES (100, 100, 'late', %s)").format(sql.Identifier(schema, "events")), [late])

    sync(lakehouse, stream, "with_lookback", "incremental_merge", lookback=dt.timedelta(hours=1), **options)
    sync(lakehouse, stream, "without_lookback", "incremental_merge", **options)

    assert bronze(lakehouse, "SELECT val FROM with_lookback WHERE id = 100") == [{"val": "late"}]
    assert bronze(lakehouse, "SELECT val FROM without_lookback WHERE id = 100") == []
    assert _counts(lakehouse, "with_lookback") == (31, 31)  # the re-read overlap merged, not duplicated
    assert _counts(lakehouse, "without_lookback") == (30, 30)
