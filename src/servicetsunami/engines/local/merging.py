"""MERGE of staged rows into a table: replaced rows marked in deletion vectors, or copy-on-write.

The files that can hold an upserted key are chosen by their key statistics. Then, by default,
DuckDB finds the positions of the rows whose keys are upserted (reading the key columns only), and
one commit of our own records them in deletion vectors (:mod:`~servicetsunami.engines.local.deletions`)
and adds the staged files as they are. An upsert of keys spread over the whole table then costs a
scan of the keys, not a rewrite of every file. A file that would be mostly deleted (over
``PURGE_FRACTION`` of its rows) is rewritten without them instead, so reads do not pay for
skipping most of a file, and a file all of whose rows go is simply removed.

Copy-on-write serves tables that cannot take deletion vectors (partitioned, a column DuckDB would
shadow, ``delta.enableDeletionVectors`` set to false, a log this module cannot replay) and engines
with them turned off (``TSUNAMI_DELETION_VECTORS=false``): DuckDB
rewrites the touched files in parallel without the replaced rows, adds the staged rows, and sorts
the result by key into small files (two row groups, about 245,000 rows, each), so later merges of
clustered keys touch few files. Memory stays under DuckDB's limit (it spills).

Either way one Delta commit carries the caller's application transaction and records the figures
(shown in table history). Measured on 5M rows with 1% of keys changed: see benchmarks/README.md.
"""

from __future__ import annotations

import array
import contextlib
import contextvars
import json
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable
from deltalake import Schema as DeltaSchema
from deltalake.transaction import AddAction, RemoveAction
from pyroaring import BitMap64

from servicetsunami.connectors.duckdb_support import ident, lit
from servicetsunami.engines.local import deletions, staging
from servicetsunami.engines.local.reads import WATCHDOG
from servicetsunami.errors import InvalidInput, QueryTimeout

# A file that would have more than this share of its rows deleted is rewritten without them.
PURGE_FRACTION = 0.5


def merge_staged(
    path: Path,
    actions: list[AddAction],
    schema: pa.Schema,
    keys: list[str],
    props: CommitProperties,
    *,
    deletion_vectors: bool = True,
    lookup: duckdb.DuckDBPyConnection | None = None,
) -> bool:
    """Upsert the staged files (already in the table folder) on ``keys``. Returns False, having
    changed nothing, when delta-rs's merge must do it: the staged rows bring new columns (it
    evolves the schema), or files to rewrite carry deletion vectors that cannot be extended here.

    ``lookup`` is a DuckDB connection, sandboxed to a folder holding the table, that finds the
    replaced rows (the engine lends a cursor of the catalog's database, so a merge does not pay
    for starting DuckDB); without it one is opened for the merge."""
    started_ms = int(time.time() * 1000)
    dt = DeltaTable(str(path))
    current = pa.schema(dt.schema().to_arrow())
    if any(name not in current.names for name in schema.names) or any(k not in current.names for k in keys):
        return False
    staged = [str(path / a.path) for a in actions]
    affected = _files_that_may_hold(dt, path, actions, schema, keys)
    marking = deletion_vectors and _can_mark(dt, current)
    if marking and _merge_marking(path, dt, affected, actions, staged, keys, props, started_ms, lookup):
        return True
    deleted = deletions.deleted_rows(dt)
    if deleted is not None and any(f in deleted.files for f in affected):
        return False  # a remove must name the file's deletion vector: delta-rs's merge writes those
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
            _check_deadline()  # a merge past its time commits nothing
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
    dt: DeltaTable, path: Path, actions: list[AddAction], schema: pa.Schema, keys: list[str]
) -> list[str]:
    files = [str(Path(f)) for f in dt.file_uris()]
    staged = pa.dataset.dataset([str(path / a.path) for a in actions], schema=schema)
    key_range = staging.integer_range(staged, keys, actions)
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


# -- time limit ------------------------------------------------------------------------------------

# (deadline on the monotonic clock, the limit in seconds) of the merge running in this context
_DEADLINE: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar("merge_deadline", default=None)


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """The merge in this block stops with ``query_timeout`` past ``seconds``: its DuckDB statements
    (key lookups, rewrites) are interrupted, and no later step starts. delta-rs's own MERGE cannot
    be interrupted once started: it is bounded by the rows it merges and spills past
    :data:`DELTA_MERGE_SPILL_BYTES`, and it does not start after the deadline."""
    token = _DEADLINE.set((time.monotonic() + seconds, seconds) if seconds else None)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _timed_out(seconds: float) -> QueryTimeout:
    return QueryTimeout(
        f"the merge ran longer than {seconds:g} s and was stopped, writing nothing; sync fewer rows per batch "
        "(sync.batch_rows) or raise sync.merge_timeout_seconds"
    )


def _check_deadline() -> None:
    limit = _DEADLINE.get()
    if limit is not None and time.monotonic() >= limit[0]:
        raise _timed_out(limit[1])


@contextlib.contextmanager
def _limited(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """The block's statements on ``con`` are interrupted at the merge's deadline (query_timeout)."""
    limit = _DEADLINE.get()
    if limit is None:
        yield
        return
    deadline, seconds = limit
    left = deadline - time.monotonic()
    if left <= 0:
        raise _timed_out(seconds)
    try:
        with WATCHDOG.guard(left, con.interrupt):
            yield
    except duckdb.InterruptException as exc:
        if time.monotonic() >= deadline:
            raise _timed_out(seconds) from exc
        raise


def _rewrite(path: Path, affected: list[str], staged: list[str], keys: list[str], out: Path) -> None:
    con = _sandbox(path, out)
    try:
        old = ", ".join(lit(f) for f in affected)
        new = ", ".join(lit(f) for f in staged)
        match = " AND ".join(f"s.{ident(k)} = t.{ident(k)}" for k in keys)
        order = ", ".join(ident(k) for k in keys)
        with _limited(con):
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


@contextlib.contextmanager
def _key_reader(path: Path, lent: duckdb.DuckDBPyConnection | None) -> Iterator[duckdb.DuckDBPyConnection]:
    if lent is not None:
        yield lent
        return
    con = _sandbox(path, None)
    try:
        yield con
    finally:
        con.close()


def _sandbox(path: Path, out: Path | None) -> duckdb.DuckDBPyConnection:
    """DuckDB for rewriting (``out``: spilling past 256 MB, so a sync's memory stays bounded) or,
    without ``out``, for reading key columns (a semi-join built on the staged keys needs no limit)."""
    con = duckdb.connect(":memory:")
    if out is not None:
        con.execute(f"SET temp_directory = {lit(str(out) + '.spill')}")
        con.execute("SET memory_limit = '256MB'")
    con.execute(f"SET allowed_directories = [{lit(str(path) + '/')}]")
    con.execute("SET enable_external_access = false")
    return con


# -- deletion vectors -----------------------------------------------------------------------------


def _can_mark(dt: DeltaTable, current: pa.Schema) -> bool:
    return (
        not dt.metadata().partition_columns
        and deletions.writable(dt)
        and not any(name in current.names for name in deletions.VIRTUAL_COLUMNS)
    )


def _merge_marking(
    path: Path,
    dt: DeltaTable,
    affected: list[str],
    actions: list[AddAction],
    staged: list[str],
    keys: list[str],
    props: CommitProperties,
    started_ms: int,
    lookup: duckdb.DuckDBPyConnection | None,
) -> bool:
    """The merge with deletion vectors. False, having changed nothing, when the log cannot be
    replayed here or a file lacks the row count a deletion vector needs."""
    read_version = dt.version()
    try:
        live = deletions.live_adds(path, read_version)
    except deletions.UnreadableLog:
        return False
    by_file = {str(path / p): add for p, add in live.items()}
    if any(f not in by_file or _records(by_file[f].get("stats")) is None for f in affected):
        return False
    out = path / f"_stage_merge_{uuid.uuid4().hex}"
    out.mkdir()
    written: list[Path] = []
    try:
        hits: dict[str, BitMap64] = {}
        if affected:
            with _key_reader(path, lookup) as con:
                hits = _positions_of(con, affected, staged, keys)
        marks: dict[str, BitMap64] = {}
        purge: dict[str, BitMap64] = {}
        drop: list[str] = []
        newly_deleted = 0
        for file, positions in hits.items():
            add = by_file[file]
            old = add.get("deletionVector")
            union = positions
            if old:
                union |= deletions.read_vector(path, old)
            before = int(old["cardinality"]) if old else 0
            if len(union) == before:
                continue  # every matched row was deleted already
            newly_deleted += len(union) - before
            rows = _records(add.get("stats")) or 0
            if len(union) >= rows:
                drop.append(file)
            elif len(union) > rows * PURGE_FRACTION:
                purge[file] = union
            else:
                marks[file] = union
        now = int(time.time() * 1000)
        rewritten = _purge(path, purge, out) if purge else []
        written += [path / a.path for a in rewritten]
        descriptors = deletions.write_vectors(path, list(marks.values()))
        written += {deletions.vector_file(path, d) for d in descriptors}
        changes: list[dict[str, Any]] = deletions.upgrade_actions(dt) if marks else []
        for file in [*marks, *purge, *drop]:
            add = by_file[file]
            changes.append({"remove": _remove_of(add, now)})
        for (file, _), descriptor in zip(marks.items(), descriptors, strict=True):
            add = by_file[file]
            stats = json.dumps({**json.loads(add["stats"]), "tightBounds": False})  # bounds may be of deleted rows
            changes.append({"add": {**add, "dataChange": True, "deletionVector": descriptor, "stats": stats}})
        changes += [{"add": _add_of(a)} for a in [*rewritten, *actions]]
        metrics = {
            "num_target_rows_deleted": newly_deleted,
            "num_target_files_marked": len(marks),
            "num_target_files_rewritten": len(purge),
            "num_target_files_removed": len(drop),
            "num_output_rows": sum(_rows(a) for a in actions),
            "execution_time_ms": now - started_ms,
        }
        _check_deadline()  # a merge past its time commits nothing
        deletions.commit(
            path,
            read_version,
            changes,
            operation="MERGE",
            parameters={"mergeKeys": json.dumps(keys), "method": "deletion vectors"},
            metrics=metrics,
            props=props,
        )
    except BaseException:
        for leftover in written:
            leftover.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(f"{out}.spill", ignore_errors=True)
    return True


def _positions_of(
    con: duckdb.DuckDBPyConnection, files: list[str], staged: list[str], keys: list[str]
) -> dict[str, BitMap64]:
    """For each file, the positions of its rows whose key is among the staged rows' (read from the
    key columns alone; rows deleted already may be among them)."""
    cols = ", ".join(ident(k) for k in keys)
    match = " AND ".join(f"d.{ident(k)} = s.{ident(k)}" for k in keys)
    old = ", ".join(lit(f) for f in files)
    new = ", ".join(lit(f) for f in staged)
    with _limited(con):
        found = con.execute(
            f"SELECT d.file_index, d.file_row_number FROM read_parquet([{old}], union_by_name=true) d "
            f"SEMI JOIN (SELECT {cols} FROM read_parquet([{new}], union_by_name=true)) s ON {match}"
        ).arrow()
        if isinstance(found, pa.RecordBatchReader):
            found = found.read_all()
    index = found.column("file_index").combine_chunks()
    rows = found.column("file_row_number").combine_chunks()
    return {files[i]: _bitmap(pc.filter(rows, pc.equal(index, i))) for i in pc.unique(index).to_pylist()}


def _bitmap(positions: pa.Array) -> BitMap64:
    """A bitmap of int64 positions, read straight from the Arrow buffer (three times faster than
    going through Python ints)."""
    unsigned = positions.cast(pa.uint64())
    start = unsigned.offset * 8
    data = unsigned.buffers()[1][start : start + len(unsigned) * 8]
    return BitMap64(array.array("Q", data.to_pybytes()))


def _purge(path: Path, purge: dict[str, BitMap64], out: Path) -> list[AddAction]:
    """Rewrite the files without the given rows; the new files' add actions."""
    gone = deletions.DeletedRows(deletions.rows_table(purge), frozenset(purge), "__purged")
    con = _sandbox(path, out)
    try:
        con.register(gone.name, gone.table)
        source = deletions.source_sql(list(purge), ", union_by_name=true", gone)
        with _limited(con):
            con.execute(
                f"COPY (SELECT * FROM {source} t) TO {lit(str(out))} "
                "(FORMAT parquet, COMPRESSION snappy, ROW_GROUPS_PER_FILE 2, OVERWRITE_OR_IGNORE true)"
            )
    finally:
        con.close()
    rewritten, _, _ = staging.adopt_files(out, path)
    return rewritten


def _records(stats: str | None) -> int | None:
    """``numRecords`` of a file's statistics (the rows in the file, deleted or not)."""
    rows = json.loads(stats or "{}").get("numRecords")
    return int(rows) if rows is not None else None


def _remove_of(add: dict[str, Any], now: int) -> dict[str, Any]:
    remove = {
        "path": add["path"],
        "deletionTimestamp": now,
        "dataChange": True,
        "extendedFileMetadata": True,
        "partitionValues": add.get("partitionValues") or {},
        "size": add["size"],
    }
    if add.get("deletionVector"):
        remove["deletionVector"] = add["deletionVector"]
    return remove


def _add_of(action: AddAction) -> dict[str, Any]:
    return {
        "path": action.path,
        "partitionValues": dict(action.partition_values),
        "size": action.size,
        "modificationTime": action.modification_time,
        "dataChange": True,
        "stats": action.stats,
    }


def _rows(action: AddAction) -> int:
    return _records(action.stats) or 0


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
    _check_deadline()
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
