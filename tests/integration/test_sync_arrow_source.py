"""Syncs from a source that reads only Arrow batches (no Parquet staging), through the real
SyncRunner into a real local engine: every mode, resumed runs, cancels, and the refusal of an
incremental sync by a source that cannot read incrementally."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pytest

from servicetsunami.connectors.base import SourceCapabilities
from servicetsunami.engines.local.engine import LocalEngine
from servicetsunami.errors import NotSupported, TsunamiError
from servicetsunami.services.ingestion.sync_runner import RunProgress, SyncCancelled, SyncMode, SyncPlan, SyncRunner
from servicetsunami.sql import guard_query
from servicetsunami.tenancy import TableRef
from tests.fakes.arrow_source import ArrowSource

CATALOG = "tenant_arrowsync"
STREAM = "orders"
TARGET = TableRef(CATALOG, "bronze", "orders")
START = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
_runs = itertools.count(1)


def orders(ids: range | list[int], *, note: str = "new", minutes: int = 0) -> pa.Table:
    """Rows whose ``updated_at`` is shared by pairs of ids (ties a batch must keep together)."""
    ids = list(ids)
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "note": [f"{note} {i}" for i in ids],
            "updated_at": pa.array(
                [START + dt.timedelta(minutes=minutes + i // 2) for i in ids], pa.timestamp("us", "UTC")
            ),
        }
    )


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[LocalEngine]:
    eng = LocalEngine(tmp_path / "lake")
    eng.ensure_catalog(CATALOG)
    yield eng
    eng.close()


def runner(
    engine: LocalEngine, source: ArrowSource, mode: SyncMode, *, batch_rows: int = 4, **kwargs: Any
) -> SyncRunner:
    plan = SyncPlan(
        sync_id="orders-sync",
        stream=STREAM,
        target=TARGET,
        mode=mode,
        cursor_column=None if mode == "full_refresh" else "updated_at",
        primary_key=["id"] if mode == "incremental_merge" else [],
        source_label=f"arrow:test/{STREAM}",
    )
    return SyncRunner(engine, source, plan, run_id=f"run-{next(_runs)}", batch_rows=batch_rows, **kwargs)


def bronze(engine: LocalEngine, sql: str) -> list[dict[str, Any]]:
    result = engine.query(guard_query(sql, catalog=CATALOG), max_rows=10_000, max_bytes=10**8, timeout_seconds=30)
    return result.table.to_pylist()


def ids(engine: LocalEngine) -> list[int]:
    return [r["id"] for r in bronze(engine, "SELECT id FROM orders ORDER BY id")]


def test_a_full_refresh_streams_the_rows_into_one_commit_and_replaces_them_on_the_next_run(
    engine: LocalEngine,
) -> None:
    source = ArrowSource({STREAM: orders(range(1, 8))})
    first = runner(engine, source, "full_refresh").run()
    assert (first.rows, first.batches, first.version) == (7, 1, 0)
    assert first.bytes > 0
    source.tables = {STREAM: orders(range(5, 10), note="again")}
    again = runner(engine, source, "full_refresh")
    second = again.run()
    assert (second.rows, second.version) == (5, 1)
    assert ids(engine) == [5, 6, 7, 8, 9]
    lineage = bronze(engine, "SELECT DISTINCT _source, _sync_id, _ingested_at IS NOT NULL AS stamped FROM orders")
    assert lineage == [{"_source": "arrow:test/orders", "_sync_id": again.run_id, "stamped": True}]


def test_an_incremental_append_commits_batches_that_keep_ties_together_and_then_only_new_rows(
    engine: LocalEngine,
) -> None:
    source = ArrowSource({STREAM: orders(range(1, 11))})
    first = runner(engine, source, "incremental_append").run()
    assert first.rows == 10 and first.batches >= 3
    source.tables = {STREAM: pa.concat_tables([orders(range(1, 11)), orders(range(11, 14), minutes=60)])}
    second = runner(engine, source, "incremental_append").run()
    assert second.rows == 3
    assert ids(engine) == list(range(1, 14))
    assert engine.describe(TARGET).version == first.batches + second.batches - 1


def test_an_incremental_merge_upserts_changed_rows_on_the_key(engine: LocalEngine) -> None:
    source = ArrowSource({STREAM: orders(range(1, 9))}, primary_keys={STREAM: ["id"]})
    runner(engine, source, "incremental_merge").run()
    changed = orders([2, 3], note="changed", minutes=60)
    rest = orders([1, *range(4, 9)])
    source.tables = {STREAM: pa.concat_tables([rest, changed])}
    second = runner(engine, source, "incremental_merge").run()
    assert second.rows == 2
    rows = bronze(engine, "SELECT id, note FROM orders ORDER BY id")
    assert [r["id"] for r in rows] == list(range(1, 9))
    assert [r["note"] for r in rows if r["id"] in (2, 3)] == ["changed 2", "changed 3"]


@pytest.mark.parametrize("mode", ["incremental_append", "incremental_merge"])
def test_a_resumed_sync_neither_loses_nor_duplicates_rows(engine: LocalEngine, mode: SyncMode) -> None:
    source = ArrowSource({STREAM: orders(range(1, 21))}, primary_keys={STREAM: ["id"]})
    source.fail_read = 3  # the third batch breaks part-way: nothing of it may land
    with pytest.raises(TsunamiError):
        runner(engine, source, mode).run()
    landed = ids(engine)
    assert landed == list(range(1, len(landed) + 1)) and 0 < len(landed) < 20

    def die_after_the_commit(progress: RunProgress) -> None:
        raise RuntimeError("the process died right after this commit")

    with pytest.raises(RuntimeError):  # the commit landed; nothing after it ran
        runner(engine, source, mode, on_progress=die_after_the_commit).run()
    assert len(ids(engine)) > len(landed)
    runner(engine, source, mode).run()
    assert ids(engine) == list(range(1, 21))


def test_cancelling_between_the_chunks_of_a_streamed_batch_keeps_the_last_committed_version(
    engine: LocalEngine,
) -> None:
    source = ArrowSource({STREAM: orders(range(1, 13))})
    run = runner(engine, source, "incremental_append")
    source.between_chunks = lambda: run.cancel() if source.reads == 2 else None
    with pytest.raises(SyncCancelled):
        run.run()
    assert run.progress.batches == 1
    assert engine.describe(TARGET).version == 0
    assert len(ids(engine)) == run.progress.rows


class _WholeTablesOnly(ArrowSource):
    capabilities: ClassVar[SourceCapabilities] = SourceCapabilities(incremental=False, stage_parquet=False)


def test_an_incremental_sync_of_a_source_that_cannot_read_incrementally_is_not_supported(
    engine: LocalEngine,
) -> None:
    source = _WholeTablesOnly({STREAM: orders(range(1, 5))})
    with pytest.raises(NotSupported):
        runner(engine, source, "incremental_append")
    runner(engine, source, "full_refresh").run()
    assert ids(engine) == [1, 2, 3, 4]
