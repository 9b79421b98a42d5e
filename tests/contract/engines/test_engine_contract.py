"""The Engine contract, run against every registered engine: local, Databricks on the fake
workspace (tests/fakes/databricks) driven by the official SDK, and the local engine wrapped by the
MirroredEngine of the hybrid mode.

A test that needs a capability says so with ``@pytest.mark.requires(...)``; against an engine that
declares it lacks one, the test must refuse with ``NotSupported`` (tests/contract/conftest.py),
never special-cased by engine name nor skipped.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from servicetsunami.engines.base import Capabilities, Engine, Idempotency, WriteMode, WriteResult
from servicetsunami.engines.mirror import MirroredEngine
from servicetsunami.engines.registry import ENGINES
from servicetsunami.errors import Conflict, InvalidInput, NotFound, QueryTimeout, TsunamiError
from servicetsunami.settings import Settings
from servicetsunami.sql import guard_query
from servicetsunami.tenancy import TableRef

CATALOG = "tenant_contract"


def _mirrored(settings: Settings) -> Engine:
    """The local engine as the hybrid mode wraps it; the outbox is a list nobody replays."""
    outbox: list[tuple[TableRef, WriteResult, WriteMode]] = []
    return MirroredEngine(ENGINES["local"](settings), lambda *job: outbox.append(job))


SUBJECTS = {**ENGINES, "local+mirror": _mirrored}


@pytest.fixture(params=sorted(SUBJECTS))
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    kind = request.param.partition("+")[0]
    settings = Settings(home=tmp_path, engine=kind, _env_file=None)  # type: ignore[call-arg]  # pydantic-settings option
    if kind == "databricks":  # a fresh workspace on the fake for each test
        settings.databricks = request.getfixturevalue("fake_workspace")
    eng = SUBJECTS[request.param](settings)
    eng.ensure_catalog(CATALOG)
    yield eng
    eng.close()


@pytest.fixture
def capabilities(engine: Engine) -> Capabilities:
    return engine.capabilities


def stream(rows: dict[str, list[object]], schema: pa.Schema | None = None) -> pa.RecordBatchReader:
    return pa.table(rows, schema=schema).to_reader(max_chunksize=2)


def q(engine: Engine, sql: str, max_rows: int = 1000, max_bytes: int = 10**8, timeout: float = 30) -> list[dict]:
    res = engine.query(
        guard_query(sql, catalog=CATALOG), max_rows=max_rows, max_bytes=max_bytes, timeout_seconds=timeout
    )
    return res.table.to_pylist()


REF = TableRef(CATALOG, "bronze", "items")


def test_ensure_catalog_is_idempotent(engine: Engine) -> None:
    engine.ensure_catalog(CATALOG)
    engine.ensure_catalog(CATALOG)
    assert engine.list_tables(CATALOG) == []


def test_written_rows_are_read_back_with_sql(engine: Engine) -> None:
    result = engine.write_table(REF, stream({"id": [1, 2, 3], "name": ["a", "b", "c"]}), mode="create")
    assert (result.version, result.rows) == (0, 3)
    assert q(engine, "SELECT name FROM items WHERE id >= 2 ORDER BY id") == [{"name": "b"}, {"name": "c"}]


def test_create_refuses_an_existing_table_and_changes_nothing(engine: Engine) -> None:
    engine.write_table(REF, stream({"id": [1]}), mode="create")
    with pytest.raises(Conflict):
        engine.write_table(REF, stream({"id": [2]}), mode="create")
    assert engine.describe(REF).version == 0
    assert q(engine, "SELECT id FROM items") == [{"id": 1}]


def test_append_adds_new_columns_and_old_rows_read_as_null(engine: Engine) -> None:
    engine.write_table(REF, stream({"id": [1]}), mode="create")
    engine.write_table(REF, stream({"id": [2], "extra": ["x"]}), mode="append")
    assert q(engine, "SELECT id, extra FROM items ORDER BY id") == [{"id": 1, "extra": None}, {"id": 2, "extra": "x"}]


def test_overwrite_replaces_rows_and_schema(engine: Engine) -> None:
    engine.write_table(REF, stream({"id": [1, 2]}), mode="create")
    engine.write_table(REF, stream({"code": ["z"]}), mode="overwrite")
    assert q(engine, "SELECT * FROM items") == [{"code": "z"}]


@pytest.mark.requires("merge")
def test_merge_upserts_on_keys(engine: Engine) -> None:
    engine.write_table(REF, stream({"id": [1, 2], "v": ["a", "b"]}), mode="create")
    engine.write_table(REF, stream({"id": [2, 3], "v": ["B", "c"]}), mode="merge", merge_keys=["id"])
    assert q(engine, "SELECT id, v FROM items ORDER BY id") == [
        {"id": 1, "v": "a"},
        {"id": 2, "v": "B"},
        {"id": 3, "v": "c"},
    ]


def test_a_write_with_an_already_committed_idempotency_token_is_skipped(engine: Engine) -> None:
    engine.write_table(REF, stream({"id": [1]}), mode="create", idempotency=Idempotency("sync-1", 1))
    again = engine.write_table(REF, stream({"id": [1]}), mode="append", idempotency=Idempotency("sync-1", 1))
    assert again.skipped
    engine.write_table(REF, stream({"id": [2]}), mode="append", idempotency=Idempotency("sync-1", 2))
    assert q(engine, "SELECT count(*) AS n FROM items") == [{"n": 2}]


def test_a_failing_stream_leaves_the_table_at_its_version(engine: Engine) -> None:
    engine.write_table(REF, stream({"id": [1]}), mode="create")
    schema = pa.schema([("id", pa.int64())])

    def broken() -> Iterator[pa.RecordBatch]:
        yield pa.record_batch({"id": [2]}, schema=schema)
        raise OSError("source went away")

    with pytest.raises(TsunamiError):
        engine.write_table(REF, pa.RecordBatchReader.from_batches(schema, broken()), mode="append")
    assert engine.describe(REF).version == 0
    assert q(engine, "SELECT id FROM items") == [{"id": 1}]


def test_a_failing_create_leaves_no_table(engine: Engine) -> None:
    schema = pa.schema([("id", pa.int64())])

    def broken() -> Iterator[pa.RecordBatch]:
        yield pa.record_batch({"id": [2]}, schema=schema)
        raise OSError("source went away")

    with pytest.raises(TsunamiError):
        engine.write_table(REF, pa.RecordBatchReader.from_batches(schema, broken()), mode="create")
    assert not engine.table_exists(REF)
    assert engine.list_tables(CATALOG) == []


@pytest.mark.requires("time_travel")
def test_time_travel_by_version_and_timestamp(engine: Engine) -> None:
    engine.write_table(REF, stream({"id": [1]}), mode="create")
    between = datetime.now(UTC)
    while datetime.now(UTC) <= between + timedelta(milliseconds=5):  # commit stamps are in milliseconds
        pass
    engine.write_table(REF, stream({"id": [2]}), mode="append")
    assert q(engine, "SELECT count(*) AS n FROM items VERSION AS OF 0") == [{"n": 1}]
    assert q(engine, "SELECT count(*) AS n FROM items") == [{"n": 2}]
    stamp = between.strftime("%Y-%m-%d %H:%M:%S.%f")
    assert q(engine, f"SELECT count(*) AS n FROM items TIMESTAMP AS OF '{stamp}'") == [{"n": 1}]
    assert engine.describe(REF, version=0).rows == 1
    with pytest.raises(NotFound):
        engine.describe(REF, version=7)


def test_timestamp_as_of_after_the_latest_commit_is_refused(engine: Engine) -> None:
    engine.write_table(REF, stream({"id": [1]}), mode="create")
    with pytest.raises(InvalidInput) as refused:
        q(engine, "SELECT count(*) AS n FROM items TIMESTAMP AS OF '2999-01-01 00:00:00'")
    assert refused.value.code == "invalid_input"


def test_history_lists_commits_newest_first(engine: Engine) -> None:
    engine.write_table(REF, stream({"id": [1]}), mode="create")
    engine.write_table(REF, stream({"id": [2]}), mode="append")
    history = engine.history(REF)
    assert [h.version for h in history] == [1, 0]
    assert history[0].operation


def test_describe_reports_columns_comments_rows_and_size(engine: Engine) -> None:
    schema = pa.schema(
        [pa.field("order_id", pa.int64(), metadata={"comment": "Order ID"}), pa.field("amount", pa.decimal128(15, 2))]
    )
    engine.write_table(REF, stream({"order_id": [1, 2], "amount": [None, None]}, schema), mode="create")
    d = engine.describe(REF)
    assert [(c.name, c.type) for c in d.columns] == [("order_id", "BIGINT"), ("amount", "DECIMAL(15,2)")]
    assert d.rows == 2 and d.size_bytes and d.size_bytes > 0 and d.version == 0


@pytest.mark.requires("column_comments", refuses=False)  # the write succeeds; only the comment is not kept
def test_column_comments_travel_from_the_arrow_schema_to_describe(engine: Engine) -> None:
    schema = pa.schema([pa.field("order_id", pa.int64(), metadata={"comment": "Order ID"})])
    engine.write_table(REF, stream({"order_id": [1]}, schema), mode="create")
    assert [c.comment for c in engine.describe(REF).columns] == ["Order ID"]


def test_reads_repeated_between_writes_show_every_write(engine: Engine) -> None:
    sql = "SELECT count(*) AS n FROM items"
    engine.write_table(REF, stream({"id": [1]}), mode="create")
    assert (engine.describe(REF).rows, len(engine.history(REF)), q(engine, sql)) == (1, 1, [{"n": 1}])
    assert (engine.describe(REF).rows, len(engine.history(REF)), q(engine, sql)) == (1, 1, [{"n": 1}])
    engine.write_table(REF, stream({"id": [2, 3]}), mode="append")
    assert (engine.describe(REF).rows, len(engine.history(REF)), q(engine, sql)) == (3, 2, [{"n": 3}])
    engine.drop_table(REF)
    engine.write_table(REF, stream({"id": [7, 8, 9, 10], "extra": ["a", "b", "c", "d"]}), mode="create")
    detail = engine.describe(REF)
    assert (detail.rows, [c.name for c in detail.columns], q(engine, sql)) == (4, ["id", "extra"], [{"n": 4}])


def test_queries_are_capped_by_rows_and_bytes(engine: Engine) -> None:
    engine.write_table(REF, stream({"id": list(range(100))}), mode="create")
    res = engine.query(
        guard_query("SELECT * FROM items", catalog=CATALOG), max_rows=10, max_bytes=10**8, timeout_seconds=30
    )
    assert res.table.num_rows == 10 and res.truncated
    res = engine.query(
        guard_query("SELECT * FROM items", catalog=CATALOG), max_rows=1000, max_bytes=1024, timeout_seconds=30
    )
    assert res.truncated or res.table.nbytes <= 1024 * 2


def test_a_long_query_is_interrupted_at_the_timeout(engine: Engine) -> None:
    engine.write_table(REF, stream({"id": list(range(10))}), mode="create")
    sql = "SELECT count(*) FROM items a, items b, items c, items d, items e, items f, items g, items h, items i"
    started = time.perf_counter()
    with pytest.raises(QueryTimeout):
        engine.query(guard_query(sql, catalog=CATALOG), max_rows=10, max_bytes=10**6, timeout_seconds=0.3)
    assert time.perf_counter() - started < 10


def test_concurrent_appends_to_one_table_all_land(engine: Engine) -> None:
    engine.write_table(REF, stream({"id": [0]}), mode="create")
    errors: list[BaseException] = []

    def append(i: int) -> None:
        try:
            engine.write_table(REF, stream({"id": [i]}), mode="append")
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(i,)) for i in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert q(engine, "SELECT count(*) AS n FROM items") == [{"n": 9}]
    assert engine.describe(REF).version == 8


def test_missing_table_is_not_found(engine: Engine) -> None:
    with pytest.raises(NotFound):
        q(engine, "SELECT * FROM nowhere")
    with pytest.raises(NotFound):
        engine.describe(TableRef(CATALOG, "silver", "nowhere"))


def test_drop_removes_the_table(engine: Engine) -> None:
    engine.write_table(REF, stream({"id": [1]}), mode="create")
    engine.drop_table(REF)
    assert not engine.table_exists(REF)
    with pytest.raises(NotFound):
        engine.drop_table(REF)


@pytest.mark.requires("optimize", "vacuum")
def test_optimize_compacts_and_vacuum_runs(engine: Engine) -> None:
    for i in range(3):
        engine.write_table(REF, stream({"id": [i]}), mode="append" if i else "create")
    engine.optimize(REF)
    assert engine.describe(REF).files == 1
    engine.vacuum(REF, retention_hours=0)
    assert q(engine, "SELECT count(*) AS n FROM items") == [{"n": 3}]


@pytest.mark.requires("volumes")
def test_volume_files_round_trip(engine: Engine) -> None:
    f = engine.put_file(CATALOG, "bronze", "landing", "a/b.csv", io.BytesIO(b"x,y\n1,2\n"))
    assert f.path == f"/Volumes/{CATALOG}/bronze/landing/a/b.csv" and f.size_bytes == 8
    assert [x.path for x in engine.list_files(CATALOG, "bronze", "landing")] == [f.path]
    with engine.open_file(CATALOG, "bronze", "landing", "a/b.csv") as fh:
        assert fh.read() == b"x,y\n1,2\n"
    engine.delete_file(CATALOG, "bronze", "landing", "a/b.csv")
    assert engine.list_files(CATALOG, "bronze", "landing") == []


@pytest.mark.requires("clusters")
def test_clusters_are_listed_and_read_by_id(engine: Engine) -> None:
    listed = engine.list_clusters()
    assert listed, "an engine with clusters lists at least the one the workspace starts with"
    first = engine.get_cluster(listed[0].id)
    assert (first.id, first.kind) == (listed[0].id, engine.kind)
    with pytest.raises(NotFound):
        engine.get_cluster("0000-000000-missing0")
    with pytest.raises(NotFound):
        engine.start_cluster("0000-000000-missing0")


@pytest.mark.requires("workspace_notebooks")
def test_workspace_notebooks_round_trip_as_source(engine: Engine) -> None:
    source = "# Databricks notebook source\nprint(1)\n\n# COMMAND ----------\n\nx = 2\n"
    engine.put_workspace_notebook("/Shared/contract/a/nb", source, language="python")
    engine.put_workspace_notebook("/Shared/contract/a/nb", source + "y = 3\n", language="python")  # replaced
    assert engine.get_workspace_notebook("/Shared/contract/a/nb") == (source + "y = 3\n", "python")
    assert engine.list_workspace("/Shared/contract/a") == [("/Shared/contract/a/nb", "NOTEBOOK")]
    assert ("/Shared/contract/a", "DIRECTORY") in engine.list_workspace("/Shared/contract")
    with pytest.raises(InvalidInput):
        engine.get_workspace_notebook("/Shared/contract/a")  # a folder, not a notebook
    engine.delete_workspace_object("/Shared/contract", recursive=True)
    with pytest.raises(NotFound):
        engine.get_workspace_notebook("/Shared/contract/a/nb")
    with pytest.raises(InvalidInput):
        engine.put_workspace_notebook("/Shared/../etc/nb", source, language="python")


def test_ping_answers(engine: Engine) -> None:
    assert engine.ping() >= 0


def test_sums_of_integers_come_back_as_bigint_like_databricks(engine: Engine) -> None:
    engine.write_table(REF, stream({"id": [1, 2, 3]}), mode="create")
    res = engine.query(
        guard_query("SELECT sum(id) AS s FROM items", catalog=CATALOG), max_rows=10, max_bytes=10**6, timeout_seconds=30
    )
    assert res.table.schema.field("s").type == pa.int64()
    assert res.table.to_pylist() == [{"s": 6}]


def test_a_widened_column_is_rewritten_and_an_incompatible_change_is_refused_by_name(engine: Engine) -> None:
    engine.write_table(REF, stream({"id": [1]}, pa.schema([("id", pa.int32())])), mode="create")
    engine.write_table(REF, stream({"id": [5_000_000_000]}, pa.schema([("id", pa.int64())])), mode="append")
    assert [c.type for c in engine.describe(REF).columns] == ["BIGINT"]
    assert q(engine, "SELECT id FROM items ORDER BY id") == [{"id": 1}, {"id": 5_000_000_000}]
    version = engine.describe(REF).version
    with pytest.raises(InvalidInput, match="'id'"):
        engine.write_table(REF, stream({"id": ["x"]}), mode="append")
    assert engine.describe(REF).version == version


def test_a_query_result_written_to_a_table_replaces_it_and_a_table_cannot_be_built_from_itself(
    engine: Engine,
) -> None:
    engine.write_table(REF, stream({"id": [1, 2, 3], "v": ["a", "b", "c"]}), mode="create")
    target = TableRef(CATALOG, "silver", "items")
    select = guard_query("SELECT id, upper(v) AS v FROM bronze.items WHERE id > 1", catalog=CATALOG)
    first = engine.write_query(target, select, mode="overwrite")
    assert first.rows == 2
    again = engine.write_query(target, select, mode="overwrite")
    assert again.version > first.version
    assert q(engine, "SELECT id, v FROM silver.items ORDER BY id") == [{"id": 2, "v": "B"}, {"id": 3, "v": "C"}]
    with pytest.raises(InvalidInput):
        engine.write_query(target, guard_query("SELECT * FROM silver.items", catalog=CATALOG), mode="overwrite")
    assert q(engine, "SELECT count(*) AS n FROM silver.items") == [{"n": 2}]


def test_a_long_query_written_to_a_table_is_stopped_at_the_timeout_and_writes_nothing(engine: Engine) -> None:
    engine.write_table(REF, stream({"id": list(range(10))}), mode="create")
    target = TableRef(CATALOG, "gold", "endless")
    sql = "SELECT count(*) AS n FROM items a, items b, items c, items d, items e, items f, items g, items h, items i"
    started = time.perf_counter()
    with pytest.raises(QueryTimeout):
        engine.write_query(target, guard_query(sql, catalog=CATALOG), mode="overwrite", timeout_seconds=0.3)
    assert time.perf_counter() - started < 10
    assert not engine.table_exists(target)


@pytest.mark.requires("query_append")
def test_a_query_result_appended_to_a_table_adds_its_rows(engine: Engine) -> None:
    engine.write_table(REF, stream({"id": [1, 2, 3]}), mode="create")
    target = TableRef(CATALOG, "silver", "items")
    engine.write_table(target, stream({"id": [0]}), mode="create")
    result = engine.write_query(
        target, guard_query("SELECT id FROM bronze.items WHERE id > 1", catalog=CATALOG), mode="append"
    )
    assert result.rows == 2
    assert q(engine, "SELECT id FROM silver.items ORDER BY id") == [{"id": 0}, {"id": 2}, {"id": 3}]


def test_a_query_result_cannot_be_merged_for_want_of_keys(engine: Engine) -> None:
    engine.write_table(REF, stream({"id": [1]}), mode="create")
    with pytest.raises(InvalidInput):
        engine.write_query(
            TableRef(CATALOG, "silver", "items"),
            guard_query("SELECT id FROM bronze.items", catalog=CATALOG),
            mode="merge",
        )


@pytest.mark.requires("staged_parquet")
def test_staged_parquet_files_commit_as_one_version_at_most_once(engine: Engine) -> None:
    def staged(ids: list[int]) -> Path:
        stage = engine.new_stage(REF)
        pq.write_table(pa.table({"id": ids}), stage / "part-0.parquet")
        return stage

    token = Idempotency("stage-sync", 1)
    first = engine.commit_stage(REF, staged([1, 2]), mode="append", idempotency=token)
    assert (first.rows, first.skipped) == (2, False)
    again = engine.commit_stage(REF, staged([1, 2]), mode="append", idempotency=token)
    assert again.skipped
    engine.commit_stage(REF, staged([2, 3]), mode="merge", merge_keys=["id"], idempotency=Idempotency("stage-sync", 2))
    assert q(engine, "SELECT id FROM items ORDER BY id") == [{"id": 1}, {"id": 2}, {"id": 3}]
    committed = engine.last_commit_for(REF, "stage-sync")
    assert committed is not None and committed[0] == 2


@pytest.mark.requires("staged_parquet")
def test_a_discarded_stage_leaves_no_table(engine: Engine) -> None:
    stage = engine.new_stage(REF)
    pq.write_table(pa.table({"id": [1]}), stage / "part-0.parquet")
    engine.discard_stage(REF, stage)
    assert not engine.table_exists(REF)
