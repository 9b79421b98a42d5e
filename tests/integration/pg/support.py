"""Helpers for the PostgreSQL sync tests: the test server's address (required, never skipped),
a lakehouse of one's own, and a sync run in one call."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
import pytest

from servicetsunami.connectors.postgres import PostgresConfig, PostgresSource
from servicetsunami.engines.local.engine import LocalEngine
from servicetsunami.services.ingestion.sync_runner import RunProgress, SyncMode, SyncPlan, SyncRunner
from servicetsunami.sql import guard_query
from servicetsunami.tenancy import TableRef

ENV = "TSUNAMI_TEST_POSTGRES_URL"
CATALOG = "tenant_pgsync"


def server_url() -> str:
    url = os.environ.get(ENV, "")
    if not url:
        pytest.fail(
            f"{ENV} is not set: these tests need a PostgreSQL server, "
            f"e.g. {ENV}=postgresql+psycopg://postgres@127.0.0.1:5432/test",
            pytrace=False,
        )
    return url


def postgres_config(url: str | None = None) -> PostgresConfig:
    parts = urlsplit(url or server_url())
    return PostgresConfig(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        database=parts.path.lstrip("/") or "postgres",
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password) if parts.password else None,
        sslmode="prefer",
    )


def connect() -> psycopg.Connection[Any]:
    """An autocommit connection to the test database, for setting up and changing source tables."""
    config = postgres_config()
    try:
        return psycopg.connect(config.conninfo(), autocommit=True, application_name="tsunami-tests")
    except psycopg.OperationalError as exc:
        pytest.fail(f"the PostgreSQL server at {ENV} ({config.redacted()}) is unreachable: {exc}", pytrace=False)


def bronze(engine: LocalEngine, sql: str) -> list[dict[str, Any]]:
    result = engine.query(guard_query(sql, catalog=CATALOG), max_rows=1_000_000, max_bytes=10**9, timeout_seconds=60)
    return result.table.to_pylist()


def target(name: str) -> TableRef:
    return TableRef(CATALOG, "bronze", name)


def sync(
    engine: LocalEngine,
    stream: str,
    table: str,
    mode: SyncMode = "full_refresh",
    *,
    sync_id: str | None = None,
    cursor_column: str | None = None,
    primary_key: list[str] | None = None,
    batch_rows: int = 10_000,
    lookback: dt.timedelta | int = 0,
    source: PostgresSource | None = None,
) -> RunProgress:
    """One run of the sync ``sync_id`` (default: one per target table) with a source of its own."""
    plan = SyncPlan(
        sync_id=sync_id or f"{stream}->{table}",
        stream=stream,
        target=target(table),
        mode=mode,
        cursor_column=cursor_column,
        primary_key=primary_key or [],
        source_label=f"postgres:test/{stream}",
    )
    own = source is None
    src = source or PostgresSource(postgres_config())
    try:
        runner = SyncRunner(engine, src, plan, run_id=os.urandom(6).hex(), batch_rows=batch_rows, lookback=lookback)
        return runner.run()
    finally:
        if own:
            src.close()
