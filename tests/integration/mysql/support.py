"""Helpers for the MySQL / MariaDB tests: the test server's address (required, never skipped: these
tests fail when ``TSUNAMI_TEST_MYSQL_URL``'s server does not answer), a database of one's own, and a
sync run in one call."""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

import pymysql
import pytest

from servicetsunami.connectors.mysql import MySQLConfig, MySQLSource
from servicetsunami.engines.local.engine import LocalEngine
from servicetsunami.services.ingestion.sync_runner import RunProgress, SyncMode, SyncPlan, SyncRunner
from tests.integration.pg.support import CATALOG, target

ENV = "TSUNAMI_TEST_MYSQL_URL"
DEFAULT = "mysql://root@127.0.0.1:3306/test"


def server_url() -> str:
    return os.environ.get(ENV) or DEFAULT


def mysql_config(database: str | None = None, **changes: Any) -> MySQLConfig:
    parts = urlsplit(server_url())
    values: dict[str, Any] = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "database": database or parts.path.lstrip("/") or "test",
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password) if parts.password else None,
    }
    return MySQLConfig(**{**values, **changes})


def connect(database: str | None = None) -> pymysql.connections.Connection[Any]:
    """An autocommit root connection (session time zone UTC) for setting up and changing source tables."""
    config = mysql_config(database)
    try:
        return pymysql.connect(
            host=config.host,
            port=config.port,
            user=config.user,
            password=config.password.get_secret_value() if config.password else "",
            database=config.database,
            autocommit=True,
            charset="utf8mb4",
            init_command="SET time_zone = '+00:00'",
        )
    except pymysql.err.MySQLError as exc:
        pytest.fail(f"the MySQL/MariaDB server at {ENV} ({config.redacted()}) is unreachable: {exc}", pytrace=False)


@contextmanager
def scratch_database() -> Iterator[str]:
    """A database of one's own, dropped afterwards with everything in it."""
    name = f"tsunami_{secrets.token_hex(4)}"
    conn = connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        yield name
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


def execute(database: str, *statements: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Run statements in ``database``; the rows of the last one."""
    conn = connect(database)
    try:
        rows: list[tuple[Any, ...]] = []
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement, params if "%s" in statement else None)
                rows = list(cur.fetchall())
        return rows
    finally:
        conn.close()


def sync(
    engine: LocalEngine,
    database: str,
    stream: str,
    table: str,
    mode: SyncMode = "full_refresh",
    *,
    sync_id: str | None = None,
    cursor_column: str | None = None,
    primary_key: list[str] | None = None,
    batch_rows: int = 10_000,
    lookback: dt.timedelta | int = 0,
) -> RunProgress:
    """One run of the sync ``sync_id`` (default: one per target table) with a source of its own."""
    plan = SyncPlan(
        sync_id=sync_id or f"{stream}->{table}",
        stream=stream,
        target=target(table),
        mode=mode,
        cursor_column=cursor_column,
        primary_key=primary_key or [],
        source_label=f"mysql:test/{stream}",
    )
    source = MySQLSource(mysql_config(database))
    try:
        runner = SyncRunner(engine, source, plan, run_id=os.urandom(6).hex(), batch_rows=batch_rows, lookback=lookback)
        return runner.run()
    finally:
        source.close()


__all__ = ["CATALOG", "connect", "execute", "mysql_config", "scratch_database", "sync", "target"]
