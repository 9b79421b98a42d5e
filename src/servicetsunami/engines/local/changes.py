"""What one commit of a local table did, for replaying it elsewhere (the mirror): its commit info,
the rows it added, or the whole table at that version."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.dataset as ds
from deltalake import DeltaTable

from servicetsunami.engines.local import deletions
from servicetsunami.errors import NotFound
from servicetsunami.tenancy import TableRef

if TYPE_CHECKING:
    from servicetsunami.engines.local.engine import LocalEngine


def _table(engine: LocalEngine, ref: TableRef, version: int) -> DeltaTable:
    path = engine._layout.table_dir(ref)
    try:
        return DeltaTable(str(path), version=version)
    except Exception as exc:  # delta-rs raises several kinds for a missing table or version
        raise NotFound(f"table {ref.schema}.{ref.name} has no version {version} here: {exc}") from exc


def latest_version(engine: LocalEngine, ref: TableRef) -> int | None:
    dt = engine._snapshots.latest(engine._layout.table_dir(ref))
    return dt.version() if dt is not None else None


def commit_info(engine: LocalEngine, ref: TableRef, version: int) -> dict[str, Any]:
    """The commit's info: ``operation``, ``operationParameters`` and the custom metadata written with it."""
    _table(engine, ref, version)  # NotFound for a version that is not there
    for commit in DeltaTable(str(engine._layout.table_dir(ref))).history():
        if commit.get("version") == version:
            return dict(commit)
    return {}


def rows_at(engine: LocalEngine, ref: TableRef, version: int) -> pa.RecordBatchReader:
    """The whole table as it was at ``version``."""
    return deletions.scan(_table(engine, ref, version))


def rows_added_at(engine: LocalEngine, ref: TableRef, version: int) -> pa.RecordBatchReader:
    """The rows in the files that commit ``version`` added (for an append: exactly its rows; for a
    merge: the staged rows, and any rewritten files, whose rows carry the latest values of their
    keys; a file that only gained a deletion vector keeps its path and is not among them)."""
    dt = _table(engine, ref, version)
    before = set(_table(engine, ref, version - 1).file_uris()) if version > 0 else set()
    added = [f for f in dt.file_uris() if f not in before]
    schema = pa.schema(dt.schema().to_arrow())
    if not added:
        return schema.empty_table().to_reader()
    return ds.dataset(added, schema=schema, format="parquet").scanner().to_reader()
