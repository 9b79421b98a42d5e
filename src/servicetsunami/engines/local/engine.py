"""The embedded engine: Delta Lake tables on local disk, written by delta-rs, read by DuckDB.

Read path (:mod:`~servicetsunami.engines.local.reads`; measured in ``benchmarks/read_path.py``,
figures in ``benchmarks/README.md``): each table reference becomes ``read_parquet([...files of the
Delta snapshot...])``. That honours the snapshot (only files in the log at that version), matches
raw DuckDB speed on the same files, and needs no DuckDB extension.

Sandbox: one DuckDB database per tenant catalog, opened with external access off, only the
catalog's folder readable, extension autoloading off, and its configuration locked, so even a
statement that slipped past the SQL guard could not read another tenant's files or change settings.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pyarrow as pa
import pyarrow.dataset  # registers pa.dataset
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake import Schema as DeltaSchema
from deltalake.transaction import AddAction, RemoveAction, create_table_with_add_actions

from servicetsunami.engines.base import (
    Capabilities,
    Engine,
    Idempotency,
    TableDetail,
    WriteMode,
    WriteResult,
)
from servicetsunami.engines.local import deletions, drift, merging, staging
from servicetsunami.engines.local.reads import BATCH_ROWS, LocalReads
from servicetsunami.engines.local.results import ResultCache
from servicetsunami.engines.local.storage import Layout, Snapshots, TableLocks, latest_log_version
from servicetsunami.engines.local.volumes import LocalVolumes
from servicetsunami.engines.local.writes import (
    RowCounter,
    already_written,
    commit_props,
    ms_to_dt,
    same_columns,
    translate_write_error,
)
from servicetsunami.engines.models import HistoryEntry
from servicetsunami.engines.types import columns_of
from servicetsunami.errors import (
    EngineError,
    InvalidInput,
    NotFound,
    TsunamiError,
)
from servicetsunami.sql import GuardedQuery, to_duckdb
from servicetsunami.tenancy import LANDING_VOLUME, LAYERS, TableRef

logger = logging.getLogger(__name__)


def _narrowed(reader: pa.RecordBatchReader, columns: set[int]) -> pa.RecordBatchReader:
    """HUGEINT sums as BIGINT, as Databricks returns them (see ``narrow_hugeints``)."""
    fields = [f.with_type(pa.int64()) if i in columns else f for i, f in enumerate(reader.schema)]
    schema = pa.schema(fields, metadata=reader.schema.metadata)
    return pa.RecordBatchReader.from_batches(schema, (batch.cast(schema) for batch in reader))


class LocalEngine(LocalReads, LocalVolumes, Engine):
    kind: ClassVar[str] = "local"
    capabilities: ClassVar[Capabilities] = Capabilities(staged_parquet=True)

    def __init__(
        self,
        root: Path,
        *,
        threads: int = 0,
        memory_limit: str = "",
        result_cache_bytes: int = 0,
        deletion_vectors: bool = True,
        merge_timeout_seconds: float | None = None,
    ) -> None:
        self.root = root
        self._merge_timeout = merge_timeout_seconds
        self._deletion_vectors = deletion_vectors
        self.root.mkdir(parents=True, exist_ok=True)
        self._layout = Layout(root)
        self._locks = TableLocks(self._layout)
        self._snapshots = Snapshots()
        self._threads = threads
        self._memory_limit = memory_limit
        self._dbs: dict[str, duckdb.DuckDBPyConnection] = {}
        self._dbs_guard = threading.Lock()
        self._dbs_closed = False
        self._running = {}
        self._ended = threading.Condition(self._dbs_guard)
        self._results = ResultCache(result_cache_bytes) if result_cache_bytes > 0 else None

    # -- catalogs -----------------------------------------------------------------------------

    def ensure_catalog(self, catalog: str, /) -> None:
        base = self._layout.catalog_dir(catalog)
        for schema in LAYERS:
            (base / schema).mkdir(parents=True, exist_ok=True)
        self._layout.volume_dir(catalog, "bronze", LANDING_VOLUME).mkdir(parents=True, exist_ok=True)

    def catalog_exists(self, catalog: str, /) -> bool:
        base = self._layout.catalog_dir(catalog)
        volume = self._layout.volume_dir(catalog, "bronze", LANDING_VOLUME)
        return all((base / schema).is_dir() for schema in LAYERS) and volume.is_dir()

    # -- writes -------------------------------------------------------------------------------

    def write_table(
        self,
        ref: TableRef,
        data: pa.RecordBatchReader,
        /,
        *,
        mode: WriteMode,
        merge_keys: list[str] | None = None,
        idempotency: Idempotency | None = None,
        description: str | None = None,
        commit_info: dict[str, str] | None = None,
    ) -> WriteResult:
        path = self._layout.table_dir(ref)
        if not path.parent.is_dir():
            raise NotFound(f"schema {ref.catalog}.{ref.schema} does not exist")
        with self._locks.hold(ref):
            existed = Layout.is_table(path)
            skipped = already_written(ref, lambda: self._snapshots.latest(path), existed, mode, idempotency)
            if skipped is not None:
                return skipped
            counter = RowCounter(data)
            props = commit_props(commit_info, idempotency)
            if existed and mode in ("append", "merge"):
                self._widen_for(ref, path, data.schema)
            written: DeltaTable | None = None
            try:
                if mode == "merge" and existed:
                    with merging.time_limit(self._merge_timeout):
                        merging.delta_merge(path, counter.reader(), merge_keys or [], props)
                else:
                    # A table of our own (not the shared latest snapshot, which readers hold) that the
                    # write moves to the new version: it becomes the latest snapshot, so the describe
                    # and the personal-data check that follow a write load no log again.
                    written = DeltaTable(str(path)) if existed else None
                    write_deltalake(
                        written if written is not None else str(path),
                        counter.reader(),
                        mode="overwrite" if mode == "overwrite" else "append",
                        schema_mode="overwrite" if mode == "overwrite" else "merge",
                        description=description if not existed else None,
                        commit_properties=props,
                    )
            except BaseException as exc:
                self._snapshots.forget(path)
                if not existed:
                    shutil.rmtree(path, ignore_errors=True)
                raise translate_write_error(exc, ref) from exc
            if written is None:
                written = DeltaTable(str(path))
            self._snapshots.replace(path, written)  # ours: the table is locked, so this is its head
            version = written.version()
        return WriteResult(ref, version, counter.rows)

    def write_query(
        self,
        ref: TableRef,
        query: GuardedQuery,
        /,
        *,
        mode: WriteMode = "overwrite",
        description: str | None = None,
        commit_info: dict[str, str] | None = None,
        timeout_seconds: float | None = None,
        merge_keys: list[str] | None = None,
    ) -> WriteResult:
        self._check_query_target(ref, query, mode, merge_keys)
        catalog = query.tables[0].table.catalog if query.tables else ref.catalog
        db = self._database(catalog)
        cursor = db.cursor()
        try:
            with self._limited(cursor, timeout_seconds, database=(catalog or "", db)):
                sql = to_duckdb(query, resolve=lambda r: self._source_for(r, cursor))
                try:
                    result = cursor.execute(sql)
                    hugeints = {i for i, d in enumerate(result.description or []) if str(d[1]) == "HUGEINT"}
                    reader = result.to_arrow_reader(BATCH_ROWS)
                except duckdb.Error as exc:
                    raise self._statement_error(exc, timeout_seconds) from exc
                if hugeints:
                    reader = _narrowed(reader, hugeints)
                try:
                    return self.write_table(
                        ref,
                        reader,
                        mode=mode,
                        merge_keys=merge_keys if mode == "merge" else None,
                        description=description,
                        commit_info=commit_info,
                    )
                except EngineError as exc:
                    cause = exc.__cause__
                    if isinstance(cause, duckdb.Error):  # the statement failed while its rows streamed
                        raise self._statement_error(cause, timeout_seconds) from exc
                    if isinstance(cause, OSError):  # ... and reached the writer through Arrow's reader
                        stream = self._stream_error(cause, timeout_seconds)
                        if stream is not cause:
                            raise stream from exc
                    raise
        finally:
            cursor.close()

    def new_stage(self, ref: TableRef, /) -> Path:
        path = self._layout.table_dir(ref)
        if not path.parent.is_dir():
            raise NotFound(f"schema {ref.catalog}.{ref.schema} does not exist")
        stage = path / f"_stage_{uuid.uuid4().hex}"
        stage.mkdir(parents=True)
        if ref.catalog not in self._dbs:  # a commit follows: start DuckDB (~20 ms) while the rows arrive
            threading.Thread(target=self._open_database, args=(ref.catalog,), name="duckdb-open", daemon=True).start()
        return stage

    def discard_stage(self, ref: TableRef, stage: Path, /) -> None:
        shutil.rmtree(stage, ignore_errors=True)
        path = self._layout.table_dir(ref)
        with contextlib.suppress(OSError):  # only when the stage was all the folder held
            path.rmdir()

    def commit_stage(
        self,
        ref: TableRef,
        stage: Path,
        /,
        *,
        mode: WriteMode,
        merge_keys: list[str] | None = None,
        comments: dict[str, str] | None = None,
        idempotency: Idempotency | None = None,
        description: str | None = None,
        commit_info: dict[str, str] | None = None,
    ) -> WriteResult:
        if mode == "merge" and not merge_keys:
            self.discard_stage(ref, stage)
            raise InvalidInput("merge needs at least one key column")
        path = self._layout.table_dir(ref)
        try:
            with self._locks.hold(ref):
                existed = Layout.is_table(path)
                skipped = already_written(ref, lambda: self._snapshots.latest(path), existed, mode, idempotency)
                if skipped is not None:
                    return skipped
                actions, schema, rows = staging.adopt_files(stage, path)
                props = commit_props(commit_info, idempotency)
                try:
                    if existed and mode in ("append", "merge") and schema is not None:
                        self._widen_for(ref, path, schema)
                    if mode == "merge" and existed:
                        with merging.time_limit(self._merge_timeout):
                            self._merge_staged(ref, path, actions, schema, merge_keys or [], props)
                    else:
                        effective: WriteMode = "append" if mode == "merge" else mode
                        self._commit_actions(path, existed, actions, schema, effective, comments, description, props)
                except BaseException as exc:
                    for action in actions:
                        (path / action.path).unlink(missing_ok=True)
                    if not existed:
                        shutil.rmtree(path, ignore_errors=True)
                    raise translate_write_error(exc, ref) from exc
                finally:
                    self._snapshots.forget(path)
                version = latest_log_version(path)  # ours: the table is locked
                if version is None:
                    version = DeltaTable(str(path)).version()
        finally:
            self.discard_stage(ref, stage)
        return WriteResult(ref, version, rows)

    def _commit_actions(
        self,
        path: Path,
        existed: bool,
        actions: list[AddAction],
        schema: pa.Schema | None,
        mode: WriteMode,
        comments: dict[str, str] | None,
        description: str | None,
        props: CommitProperties,
    ) -> None:
        if schema is None:
            raise InvalidInput("there are no rows to write")
        schema = staging.with_comments(schema, comments)
        if not existed:
            create_table_with_add_actions(
                str(path),
                DeltaSchema.from_arrow(schema),
                actions,
                mode="error",
                description=description,
                commit_properties=props,
            )
            return
        dt = DeltaTable(str(path))
        current = pa.schema(dt.schema().to_arrow())
        changes: list[AddAction | RemoveAction] = [*actions]
        if mode == "overwrite":
            dt.create_write_transaction(changes, "overwrite", DeltaSchema.from_arrow(schema), commit_properties=props)
        elif same_columns(current, schema):
            dt.create_write_transaction(changes, "append", DeltaSchema.from_arrow(current), commit_properties=props)
        else:  # new columns: delta-rs's writer evolves the schema; it reads the staged files back
            files = [str(path / a.path) for a in actions]
            reader = pa.dataset.dataset(files, schema=schema).scanner().to_reader()
            write_deltalake(str(path), reader, mode="append", schema_mode="merge", commit_properties=props)
            for f in files:
                Path(f).unlink(missing_ok=True)

    def _merge_staged(
        self,
        ref: TableRef,
        path: Path,
        actions: list[AddAction],
        schema: pa.Schema | None,
        keys: list[str],
        props: CommitProperties,
    ) -> None:
        """Upsert staged files: replaced rows are marked in deletion vectors, or DuckDB rewrites the files
        that hold the keys (``merging``); staged rows with new columns, and rewrites of files with
        deletion vectors, go through delta-rs's merge. The replaced rows are looked up in the catalog's
        database, which :meth:`new_stage` starts opening while the rows are staged."""
        if schema is not None:
            lookup = self._database(ref.catalog).cursor()
            try:
                with self._limited(lookup, None):
                    if merging.merge_staged(
                        path, actions, schema, keys, props, deletion_vectors=self._deletion_vectors, lookup=lookup
                    ):
                        return
            finally:
                lookup.close()
        files = [str(path / a.path) for a in actions]
        staged = pa.dataset.dataset(files, schema=schema)
        key_range = staging.integer_range(staged, keys, actions)
        merging.delta_merge(path, staged.scanner().to_reader(), keys, props, key_range=key_range)
        for f in files:
            Path(f).unlink(missing_ok=True)

    def _widen_for(self, ref: TableRef, path: Path, incoming: pa.Schema) -> None:
        if drift.widen_table(path, incoming, table=f"{ref.schema}.{ref.name}", snapshot=self._snapshots.latest(path)):
            self._snapshots.forget(path)

    # -- metadata -----------------------------------------------------------------------------

    def last_commit_for(self, ref: TableRef, app_id: str, /) -> tuple[int, dict[str, Any]] | None:
        path = self._layout.table_dir(ref)
        dt = self._snapshots.latest(path)
        if dt is None:
            return None
        sequence = dt.transaction_version(app_id)
        if sequence is None:
            return None
        for limit in (10, None):  # the sync's last commit is nearly always among the newest
            for commit in dt.history(limit):
                if commit.get("tsunami.app_id") == app_id and commit.get("tsunami.sequence") == str(sequence):
                    return sequence, commit
        return sequence, {}

    def table_exists(self, ref: TableRef, /) -> bool:
        return Layout.is_table(self._layout.table_dir(ref))

    def list_tables(self, catalog: str, /, *, schema: str | None = None) -> list[TableDetail]:
        base = self._layout.catalog_dir(catalog)
        schemas = [schema] if schema else sorted(n for n in _folders(base) if not n.startswith("_"))
        out = []
        for s in schemas:
            folder = os.path.join(base, s)  # names as strings: a thousand tables made a thousand paths
            for name in sorted(_folders(folder)):
                if os.path.isdir(os.path.join(folder, name, "_delta_log")):
                    try:
                        out.append(self.describe(TableRef(catalog, s, name)))
                    except TsunamiError:
                        logger.warning("skipping unreadable table %s.%s.%s", catalog, s, name)
        return out

    def describe(
        self, ref: TableRef, /, *, version: int | None = None, timestamp: datetime | str | None = None
    ) -> TableDetail:
        dt = self._snapshot(ref, version=version, timestamp=timestamp)
        return self._snapshots.derived(dt, ("describe", ref), lambda: self._detail(ref, dt))

    def _detail(self, ref: TableRef, dt: DeltaTable) -> TableDetail:
        actions = pa.table(dt.get_add_actions(flatten=True))
        rows = sum(v for v in actions.column("num_records").to_pylist() if v is not None) if actions.num_rows else 0
        deleted = self._deleted(dt)
        if deleted is not None:
            rows -= deleted.table.num_rows
        size = sum(actions.column("size_bytes").to_pylist()) if actions.num_rows else 0
        meta = dt.metadata()
        updated = self._commit_time(ref, dt)
        return TableDetail(
            ref=ref,
            version=dt.version(),
            columns=columns_of(pa.schema(dt.schema().to_arrow())),
            rows=rows,
            size_bytes=size,
            files=actions.num_rows,
            partition_columns=list(meta.partition_columns),
            updated_at=updated,
            location=str(self._layout.table_dir(ref)),
            comment=meta.description,
            properties=dict(meta.configuration),
        )

    def _commit_time(self, ref: TableRef, dt: DeltaTable) -> datetime | None:
        """When the snapshot's own version was committed (not the table's latest commit): the
        ``commitInfo`` of its log entry, else the history entry of that version."""
        version = dt.version()
        entry = self._layout.table_dir(ref) / "_delta_log" / f"{version:020d}.json"
        try:
            with entry.open(encoding="utf-8") as log:
                for line in log:
                    info = json.loads(line).get("commitInfo") if line.strip() else None
                    if isinstance(info, dict) and info.get("timestamp") is not None:
                        return ms_to_dt(info["timestamp"])
        except (OSError, ValueError):
            pass  # a log folded into a checkpoint: ask the history
        found = [h for h in dt.history() if h.get("version") == version]
        return ms_to_dt(found[0].get("timestamp")) if found else None

    def history(self, ref: TableRef, /, *, limit: int = 20) -> list[HistoryEntry]:
        dt = self._snapshot(ref)
        return list(self._snapshots.derived(dt, ("history", limit), lambda: self._history(ref, dt, limit)))

    @staticmethod
    def _history(ref: TableRef, dt: DeltaTable, limit: int) -> list[HistoryEntry]:
        return [
            HistoryEntry(
                version=h["version"],
                timestamp=ms_to_dt(h.get("timestamp")),
                operation=h.get("operation", ""),
                parameters=_readable_parameters(ref, h.get("operationParameters") or {}),
                # our own rewrites (``merging``) record their figures as commit metadata
                metrics={**(h.get("operationMetrics") or {}), **(h.get("tsunami.metrics") or {})},
            )
            for h in dt.history(limit)
        ]

    def drop_table(self, ref: TableRef, /) -> None:
        path = self._layout.table_dir(ref)
        with self._locks.hold(ref):
            if not Layout.is_table(path):
                raise NotFound(f"table {ref.schema}.{ref.name} does not exist")
            shutil.rmtree(path)
            self._snapshots.forget(path)

    def optimize(self, ref: TableRef, /) -> dict[str, Any]:
        with self._locks.hold(ref):
            dt = self._snapshot(ref)
            metrics = dt.optimize.compact()
            self._snapshots.forget(self._layout.table_dir(ref))
        return dict(metrics)

    def vacuum(self, ref: TableRef, /, *, retention_hours: int = 168) -> list[str]:
        with self._locks.hold(ref):
            dt = self._snapshot(ref)
            removed = list(dt.vacuum(retention_hours=retention_hours, dry_run=False, enforce_retention_duration=False))
            if deletions.in_use(dt):
                path = self._layout.table_dir(ref)
                for file in deletions.unneeded_vector_files(path, retention_hours=retention_hours):
                    file.unlink(missing_ok=True)
                    removed.append(file.relative_to(path).as_posix())
        return removed

    # -- health -------------------------------------------------------------------------------

    def ping(self) -> float:
        started = time.perf_counter()
        try:
            # A file of its own per probe: concurrent health checks must not remove each other's.
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".ping-") as probe:
                probe.write(b"ok")
                probe.flush()
            cur = self._database(None).cursor()
            try:
                cur.execute("SELECT 1").fetchall()
            finally:
                cur.close()
        except (OSError, duckdb.Error) as exc:
            raise EngineError(f"local lakehouse at {self.root} is not usable: {exc}", transient=True) from exc
        return (time.perf_counter() - started) * 1000

    def close(self) -> None:
        self.interrupt()
        with self._dbs_guard:
            self._dbs_closed = True
            for db in self._dbs.values():
                db.close()
            self._dbs.clear()


def _readable_parameters(ref: TableRef, parameters: dict[str, Any], /) -> dict[str, Any]:
    """A commit's parameters as delta-rs records them hold JSON documents as strings (the table's
    metadata, its schema inside that, the protocol): shown as the objects they are. The location
    (a server path) is shown as the table's name."""
    return {key: str(ref) if key == "location" else _json_value(value) for key, value in parameters.items()}


def _json_value(value: Any, /) -> Any:
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return _json_value(json.loads(value))
        except ValueError:
            return value
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    return value


def _folders(path: str | os.PathLike[str]) -> list[str]:
    """The names of the folders in ``path`` (none when it is not a folder)."""
    try:
        with os.scandir(path) as it:
            return [entry.name for entry in it if entry.is_dir()]
    except (FileNotFoundError, NotADirectoryError):
        return []
