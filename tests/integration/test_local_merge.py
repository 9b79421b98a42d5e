"""Upserts of staged files on the local engine: replaced rows are marked in deletion vectors, or, on
a table with them turned off, only the files that can hold the keys are rewritten."""

from __future__ import annotations

import itertools
import threading
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from servicetsunami.engines.base import Idempotency
from servicetsunami.engines.local import merging
from servicetsunami.engines.local.engine import LocalEngine
from servicetsunami.sql import guard_query
from servicetsunami.tenancy import TableRef

REF = TableRef("tenant_m", "bronze", "t")


@pytest.fixture
def engine(tmp_path: Path) -> LocalEngine:
    eng = LocalEngine(tmp_path)
    eng.ensure_catalog("tenant_m")
    return eng


def stage(engine: LocalEngine, sql: str, mode: str, seq: int):  # type: ignore[no-untyped-def]
    st = engine.new_stage(REF)
    duckdb.connect().execute(
        f"COPY ({sql}) TO '{st}' (FORMAT parquet, FILE_SIZE_BYTES '64MB', OVERWRITE_OR_IGNORE true)"
    )
    return engine.commit_stage(REF, st, mode=mode, merge_keys=["id"], idempotency=Idempotency("s", seq))  # type: ignore[arg-type]


def rows(engine: LocalEngine, sql: str) -> list[dict[str, object]]:
    return engine.query(
        guard_query(sql, catalog="tenant_m"), max_rows=10_000, max_bytes=10**8, timeout_seconds=30
    ).table.to_pylist()


def table(engine: LocalEngine) -> DeltaTable:
    return DeltaTable(str(engine.root / "tenant_m/bronze/t"))


def without_deletion_vectors(engine: LocalEngine) -> None:
    table(engine).alter.set_table_properties({"delta.enableDeletionVectors": "false"})


def delta_kernel_rows(engine: LocalEngine, sql: str) -> list[tuple[object, ...]]:
    """The same table read by another implementation: DuckDB's delta extension (delta-kernel-rs)."""
    import importlib

    con = duckdb.connect()
    module = importlib.import_module("duckdb_extension_delta")
    version = con.execute("PRAGMA version").fetchone()[0]  # type: ignore[index]
    con.execute(f"LOAD '{Path(next(iter(module.__path__))) / 'extensions' / version / 'delta.duckdb_extension'}'")
    return con.execute(sql.replace("FROM t", f"FROM delta_scan('{engine.root / 'tenant_m/bronze/t'}')")).fetchall()


def test_a_merge_of_keys_spread_over_every_file_marks_rows_instead_of_rewriting(engine: LocalEngine) -> None:
    for seq, start in enumerate(range(0, 40_000, 10_000), start=1):
        stage(engine, f"SELECT i AS id, 'old' AS v FROM range({start}, {start + 10_000}) t(i)", "append", seq)
    before = {Path(f).name for f in table(engine).file_uris()}
    result = stage(engine, "SELECT i * 100 AS id, 'new' AS v FROM range(401) t(i)", "merge", 5)  # 1%, and one new key
    assert result.rows == 401
    counts = "SELECT count(*) AS n, count(DISTINCT id) AS d, count_if(v = 'new') AS new FROM t"
    assert rows(engine, counts) == [{"n": 40_001, "d": 40_001, "new": 401}]
    assert delta_kernel_rows(engine, counts) == [(40_001, 40_001, 401)]
    assert before <= {Path(f).name for f in table(engine).file_uris()}  # no file was rewritten
    assert engine.describe(REF).rows == 40_001
    metrics = engine.history(REF, limit=1)[0].metrics
    assert metrics["num_target_files_marked"] == 4
    assert metrics["num_target_rows_deleted"] == 400
    assert metrics["num_target_files_rewritten"] == 0
    assert len(list((engine.root / "tenant_m/bronze/t").glob("deletion_vector_*.bin"))) == 1

    # the same keys again, and others: the vectors accumulate and the latest values win
    stage(
        engine, "SELECT i * 100 AS id, 'newer' AS v FROM range(200) t(i) UNION ALL SELECT 7 AS id, 'x' AS v", "merge", 6
    )
    assert rows(engine, "SELECT v, count(*) AS n FROM t GROUP BY v ORDER BY v") == [
        {"v": "new", "n": 201},
        {"v": "newer", "n": 200},
        {"v": "old", "n": 39_599},
        {"v": "x", "n": 1},
    ]
    assert delta_kernel_rows(engine, "SELECT count(*), count(DISTINCT id) FROM t") == [(40_001, 40_001)]
    assert sorted(pa.table(table(engine).scan()).column("id").to_pylist()) == [*range(40_001)]
    # the version before the merges still reads as it was
    assert rows(engine, "SELECT count_if(v = 'old') AS old FROM t VERSION AS OF 3") == [{"old": 40_000}]
    again = stage(engine, "SELECT 7 AS id, 'x' AS v", "merge", 6)
    assert again.skipped


def test_a_file_mostly_replaced_is_rewritten_and_one_wholly_replaced_is_removed(engine: LocalEngine) -> None:
    stage(engine, "SELECT i AS id, 'a' AS v FROM range(0, 1000) t(i)", "append", 1)
    stage(engine, "SELECT i AS id, 'b' AS v FROM range(1000, 2000) t(i)", "append", 2)
    stage(engine, "SELECT i AS id, 'c' AS v FROM range(2000, 3000) t(i)", "append", 3)
    # all of the first file, 60% of the second, 1% of the third
    keys = "range(0, 1000) UNION ALL SELECT * FROM range(1000, 1600) UNION ALL SELECT * FROM range(2000, 3000, 100)"
    stage(engine, f"SELECT range AS id, 'new' AS v FROM (SELECT * FROM {keys})", "merge", 4)
    metrics = engine.history(REF, limit=1)[0].metrics
    assert (metrics["num_target_files_removed"], metrics["num_target_files_rewritten"]) == (1, 1)
    assert metrics["num_target_files_marked"] == 1
    assert rows(engine, "SELECT v, count(*) AS n FROM t GROUP BY v ORDER BY v") == [
        {"v": "b", "n": 400},
        {"v": "c", "n": 990},
        {"v": "new", "n": 1610},
    ]
    assert merging.PURGE_FRACTION == 0.5


def test_reads_after_a_merge_are_not_served_from_before_it(tmp_path: Path) -> None:
    engine = LocalEngine(tmp_path, result_cache_bytes=10**7)
    engine.ensure_catalog("tenant_m")
    stage(engine, "SELECT i AS id, 'old' AS v FROM range(1000) t(i)", "append", 1)
    query = "SELECT count_if(v = 'new') AS new FROM t"
    assert rows(engine, query) == [{"new": 0}]
    stage(engine, "SELECT i AS id, 'new' AS v FROM range(0, 1000, 10) t(i)", "merge", 2)
    assert rows(engine, query) == [{"new": 100}]
    assert rows(engine, query) == [{"new": 100}]


def test_optimize_and_a_widening_keep_the_rows_a_vector_deleted(engine: LocalEngine) -> None:
    stage(engine, "SELECT i::INTEGER AS id, 'old' AS v FROM range(1000) t(i)", "append", 1)
    stage(engine, "SELECT i::INTEGER AS id, 'new' AS v FROM range(0, 1000, 10) t(i)", "merge", 2)
    stage(engine, "SELECT i::BIGINT AS id, 'wide' AS v FROM range(1000, 1010) t(i)", "append", 3)  # int -> bigint
    expected = [{"v": "new", "n": 100}, {"v": "old", "n": 900}, {"v": "wide", "n": 10}]
    assert rows(engine, "SELECT v, count(*) AS n FROM t GROUP BY v ORDER BY v") == expected
    stage(engine, "SELECT i::BIGINT AS id, 'new' AS v FROM range(1, 1000, 10) t(i)", "merge", 4)
    engine.optimize(REF)
    assert deletions_left(engine) == 0
    assert rows(engine, "SELECT v, count(*) AS n FROM t GROUP BY v ORDER BY v") == [
        {"v": "new", "n": 200},
        {"v": "old", "n": 800},
        {"v": "wide", "n": 10},
    ]


def deletions_left(engine: LocalEngine) -> int:
    from servicetsunami.engines.local import deletions

    found = deletions.deleted_rows(table(engine))
    return 0 if found is None else found.table.num_rows


def test_a_column_duckdb_would_shadow_keeps_the_table_copy_on_write(engine: LocalEngine) -> None:
    stage(engine, "SELECT i AS id, 'f' || i AS filename FROM range(1000) t(i)", "append", 1)
    stage(engine, "SELECT i AS id, 'new' AS filename FROM range(0, 1000, 10) t(i)", "merge", 2)
    assert rows(engine, "SELECT count(*) AS n, count_if(filename = 'new') AS new FROM t") == [{"n": 1000, "new": 100}]
    assert "deletionVectors" not in (table(engine).protocol().reader_features or [])


def test_a_merge_of_clustered_keys_rewrites_only_the_files_that_hold_them(engine: LocalEngine) -> None:
    for seq, start in enumerate(range(0, 4000, 1000), start=1):  # four files, one per key range
        stage(engine, f"SELECT i AS id, 'old' AS v FROM range({start}, {start + 1000}) t(i)", "append", seq)
    without_deletion_vectors(engine)
    before = {p.name for p in (engine.root / "tenant_m/bronze/t").glob("*.parquet")}
    result = stage(engine, "SELECT i AS id, 'new' AS v FROM range(3990, 4010) t(i)", "merge", 5)
    assert result.rows == 20
    assert rows(engine, "SELECT count(*) AS n, count(DISTINCT id) AS d, count_if(v = 'new') AS new FROM t") == [
        {"n": 4010, "d": 4010, "new": 20}
    ]
    live = {Path(f).name for f in DeltaTable(str(engine.root / "tenant_m/bronze/t")).file_uris()}
    assert len(before & live) == 3  # the three files without those keys were kept as they were
    again = stage(engine, "SELECT i AS id, 'new' AS v FROM range(3990, 4010) t(i)", "merge", 5)
    assert again.skipped


def test_a_merge_touching_every_file_leaves_the_table_sorted_in_disjoint_key_ranges(engine: LocalEngine) -> None:
    stage(engine, "SELECT (i * 7919) % 600000 AS id, 'old' AS v FROM range(600000) t(i)", "append", 1)
    without_deletion_vectors(engine)
    stage(engine, "SELECT i * 100 AS id, 'new' AS v FROM range(6000) t(i)", "merge", 2)
    assert rows(engine, "SELECT count(*) AS n, count(DISTINCT id) AS d, count_if(v = 'new') AS new FROM t") == [
        {"n": 600000, "d": 600000, "new": 6000}
    ]
    adds = pa.table(DeltaTable(str(engine.root / "tenant_m/bronze/t")).get_add_actions(flatten=True)).to_pylist()
    ranges = sorted((a["min.id"], a["max.id"]) for a in adds)
    assert len(ranges) > 1
    assert all(high < low for (_, high), (low, _) in itertools.pairwise(ranges))
    metrics = engine.history(REF, limit=1)[0].metrics
    assert metrics["num_target_files_rewritten"] == 1
    assert metrics["num_output_rows"] == 600000


def test_vacuum_removes_the_vector_files_no_version_reads_and_keeps_the_rest(engine: LocalEngine) -> None:
    stage(engine, "SELECT i AS id, 'old' AS v FROM range(1000) t(i)", "append", 1)
    stage(engine, "SELECT i AS id, 'new' AS v FROM range(0, 1000, 10) t(i)", "merge", 2)
    [first] = (engine.root / "tenant_m/bronze/t").glob("deletion_vector_*.bin")
    stage(engine, "SELECT i AS id, 'newer' AS v FROM range(5, 1000, 10) t(i)", "merge", 3)
    assert len(list((engine.root / "tenant_m/bronze/t").glob("deletion_vector_*.bin"))) == 2
    stray = engine.root / "tenant_m/bronze/t/_delta_log/.dead.json.tmp"  # a commit killed before linking
    stray.write_text("{}")
    kept = engine.vacuum(REF, retention_hours=1)  # the replaced vector is recent: time travel may need it
    assert first.exists() and first.name not in kept
    removed = engine.vacuum(REF, retention_hours=0)
    assert first.name in removed and not first.exists() and not stray.exists()
    assert rows(engine, "SELECT v, count(*) AS n FROM t GROUP BY v ORDER BY v") == [
        {"v": "new", "n": 100},
        {"v": "newer", "n": 100},
        {"v": "old", "n": 800},
    ]


def test_vacuum_keeps_every_vector_file_when_the_log_is_one_it_cannot_replay(engine: LocalEngine) -> None:
    stage(engine, "SELECT i AS id, 'old' AS v FROM range(1000) t(i)", "append", 1)
    stage(engine, "SELECT i AS id, 'new' AS v FROM range(0, 1000, 10) t(i)", "merge", 2)
    path = engine.root / "tenant_m/bronze/t"
    # Another writer's UUID-named (v2) checkpoint, the commits before it cleaned up: delta-rs reads
    # the table, the log reader of deletions.py does not.
    version = table(engine).version()
    table(engine).create_checkpoint()
    log = path / "_delta_log"
    (log / f"{version:020d}.checkpoint.parquet").rename(log / f"{version:020d}.checkpoint.{uuid.uuid4()}.parquet")
    (log / "_last_checkpoint").unlink()
    for v in range(version):
        (log / f"{v:020d}.json").unlink()
    vectors = sorted(path.glob("deletion_vector_*.bin"))
    assert vectors
    engine.vacuum(REF, retention_hours=0)
    assert sorted(path.glob("deletion_vector_*.bin")) == vectors
    assert rows(engine, "SELECT v, count(*) AS n FROM t GROUP BY v ORDER BY v") == [
        {"v": "new", "n": 100},
        {"v": "old", "n": 900},
    ]


def test_an_engine_with_deletion_vectors_turned_off_rewrites_instead(tmp_path: Path) -> None:
    from servicetsunami.engines.registry import create_engine
    from servicetsunami.settings import Settings

    engine = create_engine(Settings(home=tmp_path, deletion_vectors=False))
    assert isinstance(engine, LocalEngine)
    engine.ensure_catalog("tenant_m")
    stage(engine, "SELECT i AS id, 'old' AS v FROM range(1000) t(i)", "append", 1)
    stage(engine, "SELECT i AS id, 'new' AS v FROM range(0, 1000, 10) t(i)", "merge", 2)
    assert rows(engine, "SELECT count(*) AS n, count_if(v = 'new') AS new FROM t") == [{"n": 1000, "new": 100}]
    assert engine.history(REF, limit=1)[0].metrics["num_target_files_rewritten"] == 1
    assert "deletionVectors" not in (table(engine).protocol().reader_features or [])


def test_a_copy_on_write_merge_after_deletion_vectors_keeps_every_key_once(tmp_path: Path) -> None:
    engine = LocalEngine(tmp_path)
    engine.ensure_catalog("tenant_m")
    stage(engine, "SELECT i AS id, 'old' AS v FROM range(1000) t(i)", "append", 1)
    stage(engine, "SELECT i AS id, 'dv' AS v FROM range(0, 1000, 10) t(i)", "merge", 2)
    rewriting = LocalEngine(tmp_path, deletion_vectors=False)  # e.g. after TSUNAMI_DELETION_VECTORS=false
    stage(rewriting, "SELECT i AS id, 'cow' AS v FROM range(5, 1000, 10) t(i)", "merge", 3)
    expected = [{"v": "cow", "n": 100}, {"v": "dv", "n": 100}, {"v": "old", "n": 800}]
    assert rows(rewriting, "SELECT v, count(*) AS n FROM t GROUP BY v ORDER BY v") == expected
    assert delta_kernel_rows(rewriting, "SELECT count(*), count(DISTINCT id) FROM t") == [(1000, 1000)]


def test_the_database_a_stage_opens_ahead_is_the_one_queries_use_and_close_leaves_none(tmp_path: Path) -> None:
    engine = LocalEngine(tmp_path / "one")
    engine.ensure_catalog("tenant_m")
    stage(engine, "SELECT range AS id FROM range(10)", "overwrite", 1)
    stage(engine, "SELECT range AS id FROM range(5, 15)", "merge", 2)
    assert list(engine._dbs) == ["tenant_m"]  # the merge looked rows up in the catalog's database
    assert rows(engine, "SELECT count(*) AS n FROM t") == [{"n": 15}]
    engine.close()

    engines = [LocalEngine(tmp_path / str(i)) for i in range(5)]
    for other in engines:  # closed while the background open may still be waiting for the lock
        other.ensure_catalog("tenant_m")
        other.discard_stage(REF, other.new_stage(REF))
        other.close()
        other._open_database("tenant_m")  # what a background open that lost the race then does
    for thread in threading.enumerate():
        if thread.name == "duckdb-open":
            thread.join(30)
    assert all(not other._dbs for other in engines)
