"""Fixtures of the PostgreSQL sync tests: a schema of one's own in the test database (dropped
afterwards with everything in it) and a lakehouse of one's own. The server is required: without
``TSUNAMI_TEST_POSTGRES_URL``, or when it does not answer, these tests fail, never skip."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from servicetsunami.engines.local.engine import LocalEngine
from tests.integration.pg.support import CATALOG, connect


@pytest.fixture
def pg() -> Iterator[psycopg.Connection[Any]]:
    conn = connect()
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def schema(pg: psycopg.Connection[Any]) -> Iterator[str]:
    name = f"tsunami_{secrets.token_hex(4)}"
    pg.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        pg.execute("SET lock_timeout = '20s'")  # a sync left holding a lock fails the teardown, never hangs it
        pg.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def lakehouse(tmp_path: Path) -> Iterator[LocalEngine]:
    engine = LocalEngine(tmp_path / "lakehouse")
    engine.ensure_catalog(CATALOG)
    try:
        yield engine
    finally:
        engine.close()
