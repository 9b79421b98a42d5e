"""Staged files described as add actions, and the key range a merge prunes files by."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from servicetsunami.engines.local import staging


def _stage(tmp_path: Path, *tables: pa.Table) -> tuple[Path, list[Path]]:
    stage, table_dir = tmp_path / "stage", tmp_path / "table"
    stage.mkdir()
    table_dir.mkdir()
    for i, table in enumerate(tables):
        pq.write_table(table, stage / f"{i}.parquet")
    return table_dir, [stage / f"{i}.parquet" for i in range(len(tables))]


def test_the_key_range_comes_from_the_add_actions_statistics_and_agrees_with_the_rows(tmp_path: Path) -> None:
    table_dir, _ = _stage(
        tmp_path, pa.table({"id": [5, None, 9], "v": ["a", "b", "c"]}), pa.table({"id": [-3, 4], "v": ["d", "e"]})
    )
    actions, schema, rows = staging.adopt_files(tmp_path / "stage", table_dir)
    assert rows == 5 and schema is not None
    staged = ds.dataset([str(table_dir / a.path) for a in actions], schema=schema)

    assert staging.integer_range(staged, ["id"], actions) == (-3, 9)
    assert staging.integer_range(staged, ["id"]) == (-3, 9)  # read from the rows
    assert staging.integer_range(staged, ["v"], actions) is None  # not an integer
    assert staging.integer_range(staged, ["id", "v"], actions) is None  # not a single key


def test_a_file_without_statistics_for_the_key_makes_the_range_come_from_the_rows(tmp_path: Path) -> None:
    table_dir, _ = _stage(tmp_path, pa.table({"id": [1, 2]}), pa.table({"id": pa.array([None, None], pa.int64())}))
    actions, schema, _ = staging.adopt_files(tmp_path / "stage", table_dir)
    assert schema is not None
    staged = ds.dataset([str(table_dir / a.path) for a in actions], schema=schema)
    assert staging.integer_range(staged, ["id"], actions) == (1, 2)
