"""A full REST sync staged chunk by chunk while the walk goes on: every record lands once, a field
or a wider type that first appears in a later chunk lands every value, and a walk that fails or is
cancelled after some chunks were staged commits nothing and leaves no staging thread behind."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from servicetsunami.connectors.base import ReadRequest
from servicetsunami.connectors.rest.config import RestConfig
from servicetsunami.connectors.rest.source import RestSource
from servicetsunami.engines.local.engine import LocalEngine
from servicetsunami.errors import SourceError, SyncCancelled
from servicetsunami.services.ingestion.sync_runner import SyncPlan, SyncRunner
from servicetsunami.sql import guard_query
from tests.fakes.rest_api import FakeApi
from tests.integration.pg.support import CATALOG, bronze, target
from tests.integration.rest.conftest import vet

CHUNK_BYTES = 300  # a few records a chunk: a walk of 20 pages spans many chunks


def _row(i: int) -> dict[str, Any]:
    row: dict[str, Any] = {"id": i, "amount": i, "note": None, "owner": {"id": i}}
    if i > 120:  # after the first chunks: a new field, an integer field that turns decimal, text where null was
        row |= {"late": f"l{i}", "amount": i + 0.5, "note": f"n{i}", "owner": {"id": i, "email": f"o{i}@x"}}
    return row


@pytest.fixture
def rows_api() -> Iterator[FakeApi]:
    api = FakeApi(items=0)
    api.state.rows = [_row(i) for i in range(1, 201)]
    with api.running():
        yield api


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[LocalEngine]:
    engine = LocalEngine(tmp_path / "lakehouse")
    engine.ensure_catalog(CATALOG)
    yield engine
    engine.close()


def _source(api: FakeApi, **settings: Any) -> RestSource:
    resource = {"name": "rows", "path": "/rows", "record_selector": "$.rows", "paginator": {"type": "page_number"}}
    config = RestConfig.model_validate(
        {"base_url": api.base_url, "backoff_seconds": 0, "resources": [resource]} | settings
    )
    return RestSource(config, vet=vet, chunk_bytes=CHUNK_BYTES)


def _sync(engine: LocalEngine, source: RestSource) -> int:
    plan = SyncPlan("rows", "rows", target("rows"), "full_refresh")
    try:
        return SyncRunner(engine, source, plan, run_id="run-1", batch_rows=1_000).run().rows
    finally:
        source.close()


@pytest.mark.parametrize("nested", ["json", "struct"])
def test_a_field_or_a_wider_type_first_seen_in_a_later_chunk_lands_every_value(
    rows_api: FakeApi, engine: LocalEngine, nested: str
) -> None:
    assert _sync(engine, _source(rows_api, nested=nested)) == 200
    got = bronze(engine, "SELECT id, amount, note, late, owner FROM rows ORDER BY id")
    if nested == "json":
        got = [row | {"owner": json.loads(row["owner"])} for row in got]
    else:  # a struct has every field of every record's object, missing ones null
        got = [row | {"owner": {k: v for k, v in row["owner"].items() if v is not None}} for row in got]
    assert got == [{"late": None} | _row(i) for i in range(1, 201)]


def test_the_staged_schema_is_the_one_a_read_of_all_the_records_has(rows_api: FakeApi, engine: LocalEngine) -> None:
    _sync(engine, _source(rows_api, nested="struct"))
    guarded = guard_query("SELECT * FROM rows LIMIT 0", catalog=CATALOG)
    table = engine.query(guarded, max_rows=1, max_bytes=10**6, timeout_seconds=60).table
    reader = _source(rows_api, nested="struct")
    try:
        read = reader.read(ReadRequest("rows")).read_all()
    finally:
        reader.close()
    assert [(f.name, f.type) for f in table.schema if not f.name.startswith("_")] == [
        (f.name, f.type) for f in read.schema
    ]


def test_a_walk_that_fails_after_some_chunks_were_staged_commits_nothing(
    rows_api: FakeApi, engine: LocalEngine
) -> None:
    with pytest.raises(SourceError) as failed:
        _sync(engine, _source(rows_api, max_pages=15))  # 20 pages of rows: the walk stops at the 16th
    assert failed.value.code == "source_error"
    assert not engine.table_exists(target("rows"))


def test_a_sync_cancelled_after_some_chunks_were_staged_commits_nothing(rows_api: FakeApi, engine: LocalEngine) -> None:
    rows_api.state.rows = [_row(i) for i in range(1, 5_001)]  # 500 pages: the walk is still going when cancelled
    source = _source(rows_api)
    runner = SyncRunner(
        engine, source, SyncPlan("rows", "rows", target("rows"), "full_refresh"), run_id="r", batch_rows=1
    )
    outcome: list[BaseException | int] = []
    syncing = threading.Thread(target=lambda: outcome.append(_run(runner, source)))
    syncing.start()
    deadline = time.monotonic() + 30
    while len(rows_api.state.requests) < 50:  # dozens of chunks handed to the stager by then
        assert time.monotonic() < deadline and syncing.is_alive(), "the walk did not get going"
        threading.Event().wait(0.01)
    runner.cancel()
    syncing.join(timeout=30)
    assert not syncing.is_alive()
    assert isinstance(outcome[0], SyncCancelled)
    assert len(rows_api.state.requests) < 500  # the walk stopped at its next request
    assert not engine.table_exists(target("rows"))
    assert not any(t.name.startswith("rest-stage-") for t in threading.enumerate())


def _run(runner: SyncRunner, source: RestSource) -> BaseException | int:
    try:
        return runner.run().rows
    except BaseException as exc:  # handed to the test's thread
        return exc
    finally:
        source.close()
