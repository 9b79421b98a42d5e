"""Syncs side by side: two tables sync in parallel; two runs of one sync writing the same bronze
table never interleave their batches into duplicates or gaps."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from servicetsunami.connectors.base import ReadRequest
from servicetsunami.connectors.postgres import PostgresConfig, PostgresSource
from servicetsunami.engines.local.engine import LocalEngine
from servicetsunami.services.ingestion.sync_runner import RunProgress, SyncMode
from tests.integration.pg.support import bronze, postgres_config, sync

pytestmark = pytest.mark.postgres

WAIT = 60.0


def _table(pg: psycopg.Connection[Any], schema: str, name: str, rows: int) -> str:
    table = sql.Identifier(schema, name)
    pg.execute(sql.SQL("CREATE TABLE {} (id bigint PRIMARY KEY, seq bigint NOT NULL, val text)").format(table))
    pg.execute(sql.SQL("INSERT INTO {} SELECT i, i, 'v' || i FROM generate_series(1, %s) AS i").format(table), [rows])
    return f"{schema}.{name}"


def _in_threads(*runs: Any) -> list[RunProgress | BaseException]:
    """Start every run at once (a barrier), wait for all; each one's progress or error."""
    results: list[RunProgress | BaseException] = [RuntimeError("did not finish")] * len(runs)
    barrier = threading.Barrier(len(runs))

    def work(i: int) -> None:
        barrier.wait(timeout=WAIT)
        try:
            results[i] = runs[i]()
        except BaseException as exc:  # handed back to the test, which asserts on it
            results[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(runs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=WAIT)
    return results


def _counts(engine: LocalEngine, table: str) -> dict[str, int]:
    return bronze(engine, f"SELECT count(*) AS n, count(DISTINCT id) AS ids FROM {table}")[0]


def test_syncs_of_two_different_tables_run_in_parallel_and_both_land_every_row(
    pg: psycopg.Connection[Any], schema: str, lakehouse: LocalEngine
) -> None:
    customers = _table(pg, schema, "customers", 20_000)
    orders = _table(pg, schema, "orders", 30_000)
    mode: SyncMode = "incremental_append"

    results = _in_threads(
        lambda: sync(lakehouse, customers, "customers", mode, cursor_column="seq", batch_rows=2_000),
        lambda: sync(lakehouse, orders, "orders", mode, cursor_column="seq", batch_rows=2_000),
    )

    assert [r.rows if isinstance(r, RunProgress) else r for r in results] == [20_000, 30_000]
    assert _counts(lakehouse, "customers") == {"n": 20_000, "ids": 20_000}
    assert _counts(lakehouse, "orders") == {"n": 30_000, "ids": 30_000}


@pytest.mark.parametrize("mode", ["incremental_append", "incremental_merge"])
def test_two_runs_of_one_sync_committing_concurrently_land_every_row_once(
    pg: psycopg.Connection[Any], schema: str, lakehouse: LocalEngine, mode: SyncMode
) -> None:
    stream = _table(pg, schema, "orders", 20_000)
    options: dict[str, Any] = {"sync_id": "orders", "cursor_column": "seq", "primary_key": ["id"], "batch_rows": 500}

    results = _in_threads(
        lambda: sync(lakehouse, stream, "orders", mode, **options),
        lambda: sync(lakehouse, stream, "orders", mode, **options),
    )

    assert all(isinstance(r, RunProgress) for r in results), results
    assert sum(r.rows for r in results if isinstance(r, RunProgress)) == 20_000  # each batch landed once
    assert _counts(lakehouse, "orders") == {"n": 20_000, "ids": 20_000}
    assert bronze(lakehouse, "SELECT sum(seq) AS s FROM orders") == [{"s": 20_000 * 20_001 // 2}]


class _HeldSource(PostgresSource):
    """A PostgreSQL source whose first read waits until the test lets it go, so a test can decide
    what another run does in between."""

    def __init__(self, config: PostgresConfig) -> None:
        super().__init__(config)
        self.holding = threading.Event()
        self.release = threading.Event()

    def stage_parquet(self, request: ReadRequest, directory: Path, /) -> None:
        if not self.release.is_set():
            self.holding.set()
            assert self.release.wait(timeout=WAIT)
        super().stage_parquet(request, directory)


def test_a_run_that_lost_a_batch_to_another_run_of_the_sync_does_not_append_its_rows_again(
    pg: psycopg.Connection[Any], schema: str, lakehouse: LocalEngine
) -> None:
    stream = _table(pg, schema, "orders", 20)
    options: dict[str, Any] = {"sync_id": "orders", "cursor_column": "seq", "batch_rows": 1_000}
    held = _HeldSource(postgres_config())
    late: list[RunProgress | BaseException] = []

    def slow_run() -> None:
        try:
            late.append(sync(lakehouse, stream, "orders", "incremental_append", source=held, **options))
        except BaseException as exc:  # handed back to the test, which asserts on it
            late.append(exc)

    slow = threading.Thread(target=slow_run)
    slow.start()
    assert held.holding.wait(timeout=WAIT)  # the slow run has planned its batch: rows 1-20
    pg.execute(
        sql.SQL("INSERT INTO {} SELECT i, i, 'v' || i FROM generate_series(21, 30) AS i").format(
            sql.Identifier(schema, "orders")
        )
    )
    fast = sync(lakehouse, stream, "orders", "incremental_append", **options)  # commits batch 1: rows 1-30
    held.release.set()
    slow.join(timeout=WAIT)
    held.close()

    assert fast.rows == 30 and isinstance(late[0], RunProgress)
    assert _counts(lakehouse, "orders") == {"n": 30, "ids": 30}
