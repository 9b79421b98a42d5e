"""MERGE of staged rows into a table, copy-on-write, with DuckDB doing the rewriting.

Delta MERGE without deletion vectors rewrites every file that holds a key being upserted
(delta-rs writes no deletion vectors). Here the files that can hold such a key are chosen by their
key statistics; DuckDB rewrites them in parallel without the replaced rows, adds the staged rows,
and sorts the result by key into small files (two row groups, about 245,000 rows, each), so later
merges of clustered keys (recent orders, say) touch few files. When the keys may be in every file
the whole table is rewritten the same way: the work is what delta-rs's merge would do, but memory
stays under DuckDB's limit (it spills) and the table comes out clustered. One Delta commit then
removes the old files and adds the new ones, with the caller's application transaction, and
records the rewrite's figures as commit metadata (shown in table history). Measured on 5M rows
with 1% of keys changed: see benchmarks/README.md.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable
from deltalake import Schema as DeltaSchema
from deltalake.transaction import AddAction, RemoveAction

from servicetsunami.connectors.duckdb_support import ident, lit
from servicetsunami.engines.local import staging
from servicetsunami.errors import InvalidInput


def merge_staged(
    path: Path, actions: list[AddAction], schema: pa.Schema, keys: list[str], props: CommitProperties
) -> bool:
    """Upsert the staged files (already in the table folder) on ``keys``. Returns False, having
    changed nothing, when the staged rows bring new columns (delta-rs's merge evolves the schema)."""
    started_ms = int(time.time() * 1000)
    dt = DeltaTable(str(path))
    current = pa.schema(dt.schema().to_arrow())
    if any(name not in current.names for name in schema.names) or any(k not in current.names for k in keys):
        return False
    staged = [str(path / a.path) for a in actions]
    affected = _files_that_may_hold(dt, path, staged, schema, keys)
    out = path / f"_stage_merge_{uuid.uuid4().hex}"
    out.mkdir()
    try:
        if affected:
            _rewrite(path, affected, staged, keys, out)
            new_actions, _, _ = staging.adopt_files(out, path)
        else:
            new_actions = []
        now = int(time.time() * 1000)
        removes = [RemoveAction(path=_relative(path, f), data_change=True, deletion_timestamp=now) for f in affected]
        changes: list[AddAction | RemoveAction] = [*removes, *(new_actions if affected else actions)]
        metrics = {
            "num_target_files_rewritten": len(affected),
            "num_output_rows": sum(_rows(a) for a in new_actions) if affected else sum(_rows(a) for a in actions),
            "execution_time_ms": now - started_ms,
        }
        props = CommitProperties(
            custom_metadata={**(props.custom_metadata or {}), "tsunami.metrics": metrics},
            max_commit_retries=props.max_commit_retries,
            app_transactions=props.app_transactions,
        )
        try:
            dt.create_write_transaction(changes, "append", DeltaSchema.from_arrow(current), commit_properties=props)
        except BaseException:
            for action in new_actions:
                (path / action.path).unlink(missing_ok=True)
            raise
    finally:
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(f"{out}.spill", ignore_errors=True)
    if affected:  # the staged rows now live in the rewritten files
        for f in staged:
            Path(f).unlink(missing_ok=True)
    return True


def _files_that_may_hold(
    dt: DeltaTable, path: Path, staged: list[str], schema: pa.Schema, keys: list[str]
) -> list[str]:
    files = [str(Path(f)) for f in dt.file_uris()]
    key_range = staging.integer_range(pa.dataset.dataset(staged, schema=schema), keys)
    if key_range is None:
        return files
    adds = pa.table(dt.get_add_actions(flatten=True))
    low_col, high_col = f"min.{keys[0]}", f"max.{keys[0]}"
    if low_col not in adds.column_names or high_col not in adds.column_names:
        return files
    keep = []
    for rel, low, high in zip(
        adds.column("path").to_pylist(),
        adds.column(low_col).to_pylist(),
        adds.column(high_col).to_pylist(),
        strict=True,
    ):
        if low is None or high is None or not (high < key_range[0] or low > key_range[1]):
            keep.append(str(path / rel))
    return keep


def _rewrite(path: Path, affected: list[str], staged: list[str], keys: list[str], out: Path) -> None:
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"SET temp_directory = {lit(str(out) + '.spill')}")
        con.execute("SET memory_limit = '256MB'")  # the sort spills past this; a sync's memory stays bounded
        con.execute(f"SET allowed_directories = [{lit(str(path) + '/')}]")
        con.execute("SET enable_external_access = false")
        old = ", ".join(lit(f) for f in affected)
        new = ", ".join(lit(f) for f in staged)
        match = " AND ".join(f"s.{ident(k)} = t.{ident(k)}" for k in keys)
        order = ", ".join(ident(k) for k in keys)
        con.execute(
            f"COPY (SELECT * FROM ("
            f"  SELECT * FROM read_parquet([{old}], union_by_name=true) t"
            f"  WHERE NOT EXISTS (SELECT 1 FROM read_parquet([{new}]) s WHERE {match})"
            f"  UNION ALL BY NAME SELECT * FROM read_parquet([{new}], union_by_name=true)"
            f") ORDER BY {order}) TO {lit(str(out))} "
            "(FORMAT parquet, COMPRESSION snappy, ROW_GROUPS_PER_FILE 2, OVERWRITE_OR_IGNORE true)"
        )
    finally:
        con.close()


def _rows(action: AddAction) -> int:
    stats = json.loads(action.stats) if action.stats else {}
    return int(stats.get("numRecords", 0))


def _relative(path: Path, file: str) -> str:
    return Path(file).relative_to(path).as_posix()


# delta-rs's MERGE otherwise holds the files it touches in memory (measured: 1.2 GB for 5M rows);
# past this it spills to disk, keeping a sync's memory bounded whatever the table size.
DELTA_MERGE_SPILL_BYTES = 256 * 1024 * 1024


def delta_merge(
    path: Path,
    source: pa.RecordBatchReader,
    keys: list[str],
    props: CommitProperties,
    *,
    key_range: tuple[int, int] | None = None,
) -> None:
    """delta-rs's MERGE (update all on a key match, insert the rest, evolving the schema): for
    rows that bring new columns, and for streamed (not staged) upserts."""
    if not keys:
        raise InvalidInput("merge needs at least one key column")
    quoted = [k.replace("`", "``") for k in keys]
    predicate = " AND ".join(f"t.`{k}` = s.`{k}`" for k in quoted)
    if key_range is not None:  # lets delta-rs skip, by their statistics, files no source key can touch
        predicate += f" AND t.`{quoted[0]}` >= {int(key_range[0])} AND t.`{quoted[0]}` <= {int(key_range[1])}"
    (
        DeltaTable(str(path))
        .merge(
            source,
            predicate,
            source_alias="s",
            target_alias="t",
            merge_schema=True,
            max_spill_size=DELTA_MERGE_SPILL_BYTES,
            commit_properties=props,
        )
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .execute()
    )
