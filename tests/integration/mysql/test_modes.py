"""Sync modes against a real MariaDB table: full refresh replaces, incremental append adds what is
new, incremental merge upserts changes, and schema drift (a new column, a widened one) lands
without losing what was already there."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from servicetsunami.engines.local.engine import LocalEngine
from servicetsunami.errors import InvalidInput, SourceError
from tests.integration.mysql.support import execute, mysql_config, sync
from tests.integration.pg.support import bronze

pytestmark = pytest.mark.mysql

T0 = dt.datetime(2024, 5, 1, 9, 0)


def _events(database: str, rows: int) -> str:
    """``events`` with ``rows`` rows; ``updated_at`` (a datetime) is shared by groups of three rows."""
    execute(
        database,
        "CREATE TABLE events (id bigint PRIMARY KEY, val varchar(40), updated_at datetime(6) NOT NULL)",
        f"INSERT INTO events SELECT seq, CONCAT('v', seq), TIMESTAMPADD(MINUTE, seq DIV 3, %s) FROM seq_1_to_{rows}",
        params=(T0,),
    )
    return f"{database}.events"


def _source_rows(database: str) -> list[dict[str, Any]]:
    rows = execute(database, "SELECT id, val, updated_at FROM events ORDER BY id")
    return [{"id": i, "val": v, "updated_at": u} for i, v, u in rows]


def _counts(engine: LocalEngine, table: str) -> tuple[int, int]:
    row = bronze(engine, f"SELECT count(*) AS n, count(DISTINCT id) AS ids FROM {table}")[0]
    return row["n"], row["ids"]


def test_a_second_full_refresh_replaces_the_table_without_duplicates(database: str, lakehouse: LocalEngine) -> None:
    stream = _events(database, 30)
    first = sync(lakehouse, database, stream, "events")
    execute(database, "DELETE FROM events WHERE id > 25", "UPDATE events SET val = 'changed' WHERE id = 1")
    second = sync(lakehouse, database, stream, "events")
    assert (first.rows, second.rows) == (30, 25)
    assert bronze(lakehouse, "SELECT id, val, updated_at FROM events ORDER BY id") == _source_rows(database)


def test_incremental_append_in_small_batches_adds_only_new_rows_exactly_once(
    database: str, lakehouse: LocalEngine
) -> None:
    stream = _events(database, 100)
    first = sync(lakehouse, database, stream, "events", "incremental_append", cursor_column="updated_at", batch_rows=7)
    assert first.rows == 100 and first.batches > 5
    again = sync(lakehouse, database, stream, "events", "incremental_append", cursor_column="updated_at")
    assert again.rows == 0
    execute(
        database,
        "INSERT INTO events SELECT seq, 'new', TIMESTAMPADD(DAY, 1, %s) FROM seq_101_to_110",
        params=(T0,),
    )
    third = sync(lakehouse, database, stream, "events", "incremental_append", cursor_column="updated_at")
    assert third.rows == 10
    assert _counts(lakehouse, "events") == (110, 110)
    assert bronze(lakehouse, "SELECT id, val, updated_at FROM events ORDER BY id") == _source_rows(database)


def test_incremental_merge_upserts_changed_rows_on_the_primary_key(database: str, lakehouse: LocalEngine) -> None:
    stream = _events(database, 60)
    sync(lakehouse, database, stream, "events", "incremental_merge", cursor_column="updated_at", primary_key=["id"])
    execute(
        database,
        "UPDATE events SET val = CONCAT(val, '+'), updated_at = TIMESTAMPADD(DAY, 2, %s) WHERE MOD(id, 10) = 0",
        params=(T0,),
    )
    execute(database, "INSERT INTO events VALUES (61, 'new', TIMESTAMPADD(DAY, 2, %s))", params=(T0,))
    second = sync(
        lakehouse, database, stream, "events", "incremental_merge", cursor_column="updated_at", primary_key=["id"]
    )
    assert second.rows == 7
    assert _counts(lakehouse, "events") == (61, 61)
    assert bronze(lakehouse, "SELECT id, val, updated_at FROM events ORDER BY id") == _source_rows(database)


def test_a_new_column_and_a_widened_one_land_and_keep_what_was_there(database: str, lakehouse: LocalEngine) -> None:
    stream = _events(database, 9)
    sync(lakehouse, database, stream, "events", "incremental_append", cursor_column="updated_at")
    execute(
        database,
        "ALTER TABLE events ADD COLUMN score int NULL, MODIFY val varchar(200)",
        "INSERT INTO events VALUES (10, 'with score', TIMESTAMPADD(DAY, 1, %s), 42)",
        params=(T0,),
    )
    second = sync(lakehouse, database, stream, "events", "incremental_append", cursor_column="updated_at")
    assert second.rows == 1
    rows = bronze(lakehouse, "SELECT id, val, score FROM events ORDER BY id")
    assert len(rows) == 10 and rows[0]["score"] is None and rows[-1] == {"id": 10, "val": "with score", "score": 42}


def test_a_narrowing_type_change_stops_the_sync_naming_the_column(database: str, lakehouse: LocalEngine) -> None:
    stream = _events(database, 9)
    sync(lakehouse, database, stream, "events", "incremental_append", cursor_column="updated_at")
    execute(
        database,
        "UPDATE events SET val = NULL",
        "ALTER TABLE events MODIFY val date NULL",
        "INSERT INTO events VALUES (10, '2024-01-01', TIMESTAMPADD(DAY, 1, %s))",
        params=(T0,),
    )
    with pytest.raises(InvalidInput, match="'val'") as caught:
        sync(lakehouse, database, stream, "events", "incremental_append", cursor_column="updated_at")
    assert caught.value.code == "invalid_input"
    assert _counts(lakehouse, "events") == (9, 9)  # nothing already landed is lost


def test_an_unreachable_server_fails_the_read_with_a_source_error(lakehouse: LocalEngine) -> None:
    from servicetsunami.connectors.base import ReadRequest
    from servicetsunami.connectors.mysql import MySQLSource

    source = MySQLSource(mysql_config(port=1, connect_timeout=2))
    try:
        with pytest.raises(SourceError) as caught:
            source.read(ReadRequest("test.anything")).read_all()
    finally:
        source.close()
    assert caught.value.details.get("problem") == "refused"
