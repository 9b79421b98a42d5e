"""Upserts of staged files on the local engine: only the files that can hold the keys are rewritten."""

from __future__ import annotations

import itertools
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from servicetsunami.engines.base import Idempotency
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


def test_a_merge_of_clustered_keys_rewrites_only_the_files_that_hold_them(engine: LocalEngine) -> None:
    for seq, start in enumerate(range(0, 4000, 1000), start=1):  # four files, one per key range
        stage(engine, f"SELECT i AS id, 'old' AS v FROM range({start}, {start + 1000}) t(i)", "append", seq)
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
