"""The read path of the local engine: guarded queries run by DuckDB over the files of a Delta
snapshot, capped in rows, bytes and time, in a sandboxed database per tenant catalog; the snapshot
cache; the result cache (:mod:`~servicetsunami.engines.local.results`).

Each table reference becomes ``read_parquet([...files of the snapshot...])``, which honours the
snapshot exactly and matches raw DuckDB speed on the same files (``benchmarks/read_path.py``).
Files with deletion vectors are read with an anti-join on the positions they delete, registered
as a view named after the vectors (so the result cache keys on them too).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from servicetsunami.engines.base import ArrowResult
from servicetsunami.engines.local import deletions
from servicetsunami.engines.local.results import ResultCache, deterministic
from servicetsunami.engines.local.storage import Layout, Snapshots
from servicetsunami.engines.local.watchdog import Watchdog
from servicetsunami.engines.local.writes import ms_to_dt, narrow_hugeints, parse_timestamp
from servicetsunami.errors import InvalidInput, LimitExceeded, NotFound, QueryTimeout
from servicetsunami.sql import GuardedQuery, TableReference, to_duckdb
from servicetsunami.tenancy import TableRef

logger = logging.getLogger(__name__)

BATCH_ROWS = 65_536
_watchdog = Watchdog()  # interrupts queries past their timeout


class LocalReads:
    """Queries, snapshots and the DuckDB databases of
    :class:`~servicetsunami.engines.local.engine.LocalEngine`."""

    root: Path
    _layout: Layout
    _snapshots: Snapshots
    _results: ResultCache | None
    _threads: int
    _memory_limit: str
    _dbs: dict[str, duckdb.DuckDBPyConnection]
    _dbs_guard: threading.Lock
    _dbs_closed: bool  # close() came after the last use

    def query(self, query: GuardedQuery, /, *, max_rows: int, max_bytes: int, timeout_seconds: float) -> ArrowResult:
        if query.kind not in ("select", "explain"):
            raise InvalidInput(f"the engine runs SELECT and EXPLAIN statements, not {query.kind}")
        started = time.perf_counter()
        catalog = query.tables[0].table.catalog if query.tables else None
        cursor = self._database(catalog).cursor()
        try:
            sql = to_duckdb(query, resolve=lambda ref: self._source_for(ref, cursor))
            # The text names the snapshot's files, which never change: the same text, the same rows.
            key = (sql, max_rows, max_bytes)
            cache = self._results if query.kind == "select" else None
            if cache is not None and not deterministic(query.statement):
                cache = None
            hit = cache.get(key) if cache is not None else None
            if hit is not None:
                return ArrowResult(hit[0], hit[1], (time.perf_counter() - started) * 1000, sql, cached=True)
            table, truncated = self._run_capped(cursor, sql, max_rows, max_bytes, timeout_seconds)
            if cache is not None:
                cache.put(key, table, truncated)
        finally:
            cursor.close()
        return ArrowResult(table, truncated, (time.perf_counter() - started) * 1000, sql)

    def _run_capped(
        self, cursor: duckdb.DuckDBPyConnection, sql: str, max_rows: int, max_bytes: int, timeout: float
    ) -> tuple[pa.Table, bool]:
        with _watchdog.guard(timeout, cursor.interrupt):
            return self._fetch_capped(cursor, sql, max_rows, max_bytes, timeout)

    def _fetch_capped(
        self, cursor: duckdb.DuckDBPyConnection, sql: str, max_rows: int, max_bytes: int, timeout: float
    ) -> tuple[pa.Table, bool]:
        try:
            result = cursor.execute(sql)
            hugeints = [i for i, d in enumerate(result.description or []) if str(d[1]) == "HUGEINT"]
            reader = result.to_arrow_reader(min(max_rows + 1, BATCH_ROWS))
            batches: list[pa.RecordBatch] = []
            rows = size = 0
            truncated = False
            for batch in reader:
                if rows + batch.num_rows > max_rows:
                    batch = batch.slice(0, max_rows - rows)
                    truncated = True
                if size + batch.nbytes > max_bytes and batches:
                    truncated = True
                    break
                batches.append(batch)
                rows += batch.num_rows
                size += batch.nbytes
                if truncated:
                    break
            return narrow_hugeints(pa.Table.from_batches(batches, schema=reader.schema), hugeints), truncated
        except duckdb.InterruptException as exc:
            raise QueryTimeout(
                f"the query ran longer than {timeout:g} s and was stopped; add filters or aggregate"
            ) from exc
        except duckdb.OutOfMemoryException as exc:
            raise LimitExceeded("the query needs more memory than allowed; aggregate or filter") from exc
        except duckdb.Error as exc:
            raise InvalidInput(self._clean_message(exc)) from exc

    def _source_for(self, ref: TableReference, cursor: duckdb.DuckDBPyConnection) -> str:
        path = self._layout.table_dir(ref.table)
        dt = self._snapshot(ref.table, version=ref.version, timestamp=ref.timestamp)
        files = dt.file_uris()
        if not files:
            name = f"__empty_{ref.table.schema}_{ref.table.name}_{dt.version()}"
            cursor.register(name, pa.schema(dt.schema().to_arrow()).empty_table())
            return f'"{name}"'
        options = ", union_by_name=true" + (", hive_partitioning=true" if dt.metadata().partition_columns else "")
        logger.debug("reading %s at version %s from %d files in %s", ref.table, dt.version(), len(files), path)
        deleted = self._deleted(dt)
        if deleted is not None:  # rows removed by deletion vectors are skipped by position
            cursor.register(deleted.name, deleted.table)
        return deletions.source_sql(files, options, deleted)

    def _deleted(self, dt: DeltaTable) -> deletions.DeletedRows | None:
        """The rows the snapshot's deletion vectors remove, read once per snapshot."""
        return self._snapshots.derived(dt, "deleted", lambda: deletions.deleted_rows(dt))

    def _snapshot(
        self, ref: TableRef, *, version: int | None = None, timestamp: datetime | str | None = None
    ) -> DeltaTable:
        path = self._layout.table_dir(ref)
        latest = self._snapshots.latest(path)
        if latest is None:
            raise NotFound(
                f"table {ref.schema}.{ref.name} does not exist in your catalog; list_tables shows what is there"
            )
        try:
            if version is not None:
                if version < 0 or version > latest.version():
                    raise NotFound(
                        f"table {ref.schema}.{ref.name} has no version {version} (versions 0 to {latest.version()})"
                    )
                return self._snapshots.at_version(path, version)
            if timestamp is not None:
                when = parse_timestamp(timestamp)
                first = latest.history()[-1].get("timestamp") if latest.version() < 1000 else None
                if first is not None and when.timestamp() * 1000 < first:
                    raise NotFound(
                        f"table {ref.schema}.{ref.name} did not exist yet at {when.isoformat()}; "
                        f"its first version is from {ms_to_dt(first)}"
                    )
                return self._snapshots.at_timestamp(path, when)
        except DeltaError as exc:
            raise NotFound(f"table {ref.schema}.{ref.name} has no version at {timestamp or version}: {exc}") from exc
        return latest

    def _database(self, catalog: str | None) -> duckdb.DuckDBPyConnection:
        with self._dbs_guard:
            self._dbs_closed = False
            return self._dbs.get(catalog or "") or self._new_database(catalog)

    def _open_database(self, catalog: str) -> None:
        """Opens the catalog's database ahead of its first use (called in a thread); not after
        :meth:`close`."""
        try:
            with self._dbs_guard:
                if catalog not in self._dbs and not self._dbs_closed:
                    self._new_database(catalog)
        except Exception:  # the caller that needs it opens it again and sees the error
            logger.debug("opening the DuckDB database of %s ahead of time failed", catalog, exc_info=True)

    def _new_database(self, catalog: str | None) -> duckdb.DuckDBPyConnection:
        """A sandboxed DuckDB for the catalog; the caller holds ``_dbs_guard``."""
        db = duckdb.connect(":memory:")
        allowed = [str(self._layout.catalog_dir(catalog)) + "/"] if catalog else []
        db.execute(f"SET allowed_directories = {allowed!r}")
        db.execute("SET enable_external_access = false")
        db.execute("SET autoinstall_known_extensions = false")
        db.execute("SET autoload_known_extensions = false")
        db.execute("SET TimeZone = 'UTC'")  # Databricks' default session zone
        if self._threads:
            db.execute(f"SET threads = {int(self._threads)}")
        if self._memory_limit:
            db.execute("SET memory_limit = ?", [self._memory_limit])
        db.execute("SET lock_configuration = true")
        self._dbs[catalog or ""] = db
        return db

    def _clean_message(self, exc: BaseException) -> str:
        text = str(exc).split("\n\nLINE ")[0].strip()
        text = text.replace(str(self.root) + "/", "")
        text = re.sub(r"read_parquet\(\[[^\]]*\][^)]*\)", "<table>", text)
        return text[:800]
