"""The source failing under a sync: its connections terminated while it reads, or the server not
answering at all. The run fails with a SourceError a person can act on, the bronze table keeps
its version, and the next run succeeds."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from servicetsunami.connectors.postgres import PostgresConfig, PostgresSource
from servicetsunami.engines.local.engine import LocalEngine
from servicetsunami.errors import SourceError
from servicetsunami.services.ingestion.sync_runner import RunProgress
from tests.integration.pg.support import bronze, postgres_config, sync, target

pytestmark = pytest.mark.postgres

CHILD = Path(__file__).with_name("sync_child.py")

WAIT = 60.0
BIG = 1_000_000


def _terminate_reads(pg: psycopg.Connection[Any], schema: str, running: threading.Thread) -> int:
    """Poll until the sync's read of ``schema`` shows up on the server, then terminate the
    connections it reads on (application_name 'servicetsunami'); how many were terminated."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and running.is_alive():
        terminated = pg.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'servicetsunami' AND datname = current_database() "
            "AND state = 'active' AND query LIKE 'COPY%%' AND query LIKE %s",
            [f'%"{schema}"%'],
        ).fetchone()
        if terminated and terminated[0]:
            return int(terminated[0])
        running.join(timeout=0.005)
    return 0


def test_a_sync_whose_source_connections_are_terminated_mid_read_fails_cleanly_and_the_next_run_succeeds(
    pg: psycopg.Connection[Any], schema: str, lakehouse: LocalEngine
) -> None:
    table = sql.Identifier(schema, "big")
    pg.execute(sql.SQL("CREATE TABLE {} (id bigint PRIMARY KEY, payload text)").format(table))
    pg.execute(sql.SQL("INSERT INTO {} SELECT i, 'row ' || i FROM generate_series(1, 100) AS i").format(table))
    stream = f"{schema}.big"
    first = sync(lakehouse, stream, "big")
    pg.execute(
        sql.SQL("INSERT INTO {} SELECT i, repeat('x', 100) || i FROM generate_series(101, %s) AS i").format(table),
        [BIG],
    )
    outcome: list[RunProgress | BaseException] = []

    def run() -> None:
        try:
            outcome.append(sync(lakehouse, stream, "big"))
        except BaseException as exc:  # handed back to the test, which asserts on it
            outcome.append(exc)

    running = threading.Thread(target=run)
    running.start()
    terminated = _terminate_reads(pg, schema, running)
    running.join(timeout=WAIT)

    assert terminated >= 1, "the sync's read never showed up on the server"
    [error] = outcome
    assert isinstance(error, SourceError), error
    assert error.code == "source_error" and error.is_transient
    assert stream in error.message
    assert lakehouse.describe(target("big")).version == first.version
    assert bronze(lakehouse, "SELECT count(*) AS n FROM big") == [{"n": 100}]
    assert not list(lakehouse.root.rglob("_stage_*")), "the failed run left its staged files behind"

    second = sync(lakehouse, stream, "big")

    assert second.rows == BIG and second.version == first.version + 1
    assert bronze(lakehouse, "SELECT count(*) AS n, count(DISTINCT id) AS ids FROM big") == [{"n": BIG, "ids": BIG}]


def test_a_sync_against_a_server_that_refuses_connections_fails_with_a_diagnosis_and_changes_nothing(
    pg: psycopg.Connection[Any], schema: str, lakehouse: LocalEngine
) -> None:
    table = sql.Identifier(schema, "items")
    pg.execute(sql.SQL("CREATE TABLE {} (id bigint PRIMARY KEY, seq bigint)").format(table))
    pg.execute(sql.SQL("INSERT INTO {} SELECT i, i FROM generate_series(1, 10) AS i").format(table))
    stream = f"{schema}.items"
    options: dict[str, Any] = {"cursor_column": "seq", "batch_rows": 4}
    first = sync(lakehouse, stream, "items", "incremental_append", **options)
    pg.execute(sql.SQL("INSERT INTO {} SELECT i, i FROM generate_series(11, 20) AS i").format(table))
    good = postgres_config()
    refused = PostgresSource(
        PostgresConfig(host=good.host, port=1, database=good.database, user=good.user, connect_timeout=2)
    )

    with pytest.raises(SourceError) as caught:
        sync(lakehouse, stream, "items", "incremental_append", source=refused, **options)
    refused.close()

    assert f"{good.host}:1/" in caught.value.message  # where it tried, with what to check in the message
    assert caught.value.is_transient
    assert lakehouse.describe(target("items")).version == first.version
    second = sync(lakehouse, stream, "items", "incremental_append", **options)
    assert second.rows == 10
    assert bronze(lakehouse, "SELECT count(*) AS n, count(DISTINCT id) AS ids FROM items") == [{"n": 20, "ids": 20}]


def test_a_sync_that_runs_out_of_disk_fails_cleanly_and_the_next_run_succeeds(
    pg: psycopg.Connection[Any], schema: str, lakehouse: LocalEngine
) -> None:
    table = sql.Identifier(schema, "disk")
    pg.execute(sql.SQL("CREATE TABLE {} (id bigint PRIMARY KEY, note text, updated_at bigint NOT NULL)").format(table))
    pg.execute(sql.SQL("INSERT INTO {} SELECT i, 'row ' || i, i FROM generate_series(1, 1000) i").format(table))
    stream = f"{schema}.disk"
    args = [
        sys.executable,
        str(CHILD),
        str(lakehouse.root),
        stream,
        "disk",
        "incremental_append",
        "--sync-id",
        "disk",
        "--cursor",
        "updated_at",
        "--batch-rows",
        "1000000",
    ]
    env = {**os.environ}
    first = subprocess.run(args, capture_output=True, text=True, env=env, timeout=WAIT, check=False)
    assert first.returncode == 0, first.stderr
    version = lakehouse.describe(target("disk")).version
    pg.execute(
        sql.SQL("INSERT INTO {} SELECT i, repeat(md5(i::text), 8), i FROM generate_series(1001, 200000) i").format(
            table
        )
    )
    full = subprocess.run(
        [*args, "--max-file-bytes", str(256 * 1024)], capture_output=True, text=True, env=env, timeout=WAIT, check=False
    )
    assert full.returncode != 0
    assert "File too large" in full.stderr or "No space" in full.stderr, full.stderr[-2000:]
    assert lakehouse.describe(target("disk")).version == version
    assert bronze(lakehouse, "SELECT count(*) AS n FROM disk") == [{"n": 1000}]
    assert not list((lakehouse.root / "tenant_pgsync" / "bronze" / "disk").glob("_stage_*"))
    again = subprocess.run(args, capture_output=True, text=True, env=env, timeout=WAIT, check=False)
    assert again.returncode == 0, again.stderr
    assert bronze(lakehouse, "SELECT count(*) AS n, count(DISTINCT id) AS d FROM disk") == [{"n": 200000, "d": 200000}]


def _join_background_opens() -> None:
    for thread in threading.enumerate():
        if thread.name == "postgres-source-open":
            thread.join(WAIT)


def test_a_source_closed_right_after_prepare_keeps_nothing_open() -> None:
    sources = [PostgresSource(postgres_config()) for _ in range(5)]
    for source in sources:  # the background open usually takes the source's locks first
        source.prepare()
        source.close()
    _join_background_opens()
    assert all(source._duck is None and source._control is None for source in sources)  # no connection left


def test_a_source_closed_before_its_background_open_starts_opens_nothing() -> None:
    source = PostgresSource(postgres_config())
    with source._control_guard:  # hold the background open back until close() has begun
        source.prepare()
        closing = threading.Thread(target=source.close)
        closing.start()
        deadline = time.monotonic() + WAIT
        while not source._closed and time.monotonic() < deadline:
            time.sleep(0.005)
        assert source._closed
    closing.join(WAIT)
    _join_background_opens()
    assert source._duck is None and source._control is None
