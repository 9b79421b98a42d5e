"""Tests that take a database_url run on both stores."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.runs.support import postgres_database


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each test runs on both stores: "" is the SQLite file in the home folder."""
    if request.param == "sqlite":
        yield ""
        return
    with postgres_database() as url:
        yield url
