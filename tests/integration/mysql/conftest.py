"""Fixtures of the MySQL / MariaDB tests: a database of one's own on the test server (dropped
afterwards) and a lakehouse of one's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from servicetsunami.engines.local.engine import LocalEngine
from tests.integration.mysql.support import CATALOG, scratch_database


@pytest.fixture
def database() -> Iterator[str]:
    with scratch_database() as name:
        yield name


@pytest.fixture
def lakehouse(tmp_path: Path) -> Iterator[LocalEngine]:
    engine = LocalEngine(tmp_path / "lakehouse")
    engine.ensure_catalog(CATALOG)
    try:
        yield engine
    finally:
        engine.close()
