"""The read path of the local engine: guarded queries run by DuckDB over the files of a Delta
snapshot, capped in rows, bytes and time, in a sandboxed database per tenant catalog; the snapshot
cache; the result cache (:mod:`~servicetsunami.engines.local.results`).

Limits: every statement (queries here, ``write_query`` and merge look-ups in the engine) runs inside
:meth:`LocalReads._limited`: the watchdog interrupts it past its timeout and :meth:`LocalReads.interrupt`
stops them all when the service stops. Each catalog's database has the memory limit of the settings
and spills past it to its own folder (``Layout.spill_dir``). The byte cap cuts inside a batch: the
rows that fit are kept (``truncated``); a first row alone past the cap is refused (``LimitExceeded``).

Each table reference becomes ``read_parquet([...files of the snapshot...])``, which honours the
snapshot exactly and matches raw DuckDB speed on the same files (``benchmarks/read_path.py``).
Files with deletion vectors are read with an anti-join on the positions they delete, registered
as a view named after the vectors (so the result cache keys on them too).
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from servicetsunami import metrics
from servicetsunami.engines.base import ArrowResult, statement_stop
from servicetsunami.engines.local import deletions
from servicetsunami.engines.local.results import ResultCache, deterministic
from servicetsunami.engines.local.storage import Layout, Snapshots
from servicetsunami.engines.local.watchdog import Watchdog
from servicetsunami.engines.local.writes import ms_to_dt, narrow_hugeints, parse_timestamp
from servicetsunami.errors import EngineError, InvalidInput, LimitExceeded, NotFound, QueryTimeout, TsunamiError
from servicetsunami.sql import GuardedQuery, TableReference, to_duckdb
from servicetsunami.tenancy import TableRef

logger = logging.getLogger(__name__)

BATCH_ROWS = 65_536
INTERRUPT_WAIT_SECONDS = 10.0  # how long interrupt() waits for interrupted statements to end
WATCHDOG = Watchdog()  # interrupts statements past their timeout (queries and write_query)


def _fitting(batch: pa.RecordBatch, room: int) -> pa.RecordBatch:
    """The longest head of ``batch`` whose Arrow data takes at most ``room`` bytes (a slice's
    ``nbytes`` counts only the values it references)."""
    low, high = 0, batch.num_rows  # batch.slice(0, low) fits; batch.slice(0, high + 1) does not
    while low < high:
        middle = (low + high + 1) // 2
        if batch.slice(0, middle).nbytes <= room:
            low = middle
        else:
            high = middle - 1
    return batch.slice(0, low)


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
    _running: dict[duckdb.DuckDBPyConnection, bool]  # cursors running a statement: interrupted by interrupt()?
    _ended: threading.Condition  # over _dbs_guard: a statement left _running

    def query(self, query: GuardedQuery, /, *, max_rows: int, max_bytes: int, timeout_seconds: float) -> ArrowResult:
        if query.kind not in ("select", "explain"):
            raise InvalidInput(f"the engine runs SELECT and EXPLAIN statements, not {query.kind}")
        started = time.perf_counter()
        catalog = query.tables[0].table.catalog if query.tables else None
        db = self._database(catalog)
        cursor = db.cursor()
        try:
            sql = to_duckdb(query, resolve=lambda ref: self._source_for(ref, cursor))
            # The text names the snapshot's files, which never change: the same text, the same rows.
            key = (sql, max_rows, max_bytes)
            cache = self._results if query.kind == "select" else None
            if cache is not None and not deterministic(query.statement):
                cache = None
            hit = cache.get(key) if cache is not None else None
            if cache is not None:
                metrics.RESULT_CACHE.labels("hit" if hit is not None else "miss").inc()
            if hit is not None:
                elapsed = time.perf_counter() - started
                metrics.ENGINE_STATEMENTS.labels("local", "cached").observe(elapsed)
                return ArrowResult(hit[0], hit[1], elapsed * 1000, sql, cached=True)
            try:
                table, truncated = self._run_capped(
                    cursor, sql, max_rows, max_bytes, timeout_seconds, database=(catalog or "", db)
                )
            except Exception:
                metrics.ENGINE_STATEMENTS.labels("local", "error").observe(time.perf_counter() - started)
                raise
            metrics.ENGINE_STATEMENTS.labels("local", "ok").observe(time.perf_counter() - started)
            if cache is not None:
                cache.put(key, table, truncated)
        finally:
            cursor.close()
        return ArrowResult(table, truncated, (time.perf_counter() - started) * 1000, sql)

    def _run_capped(
        self,
        cursor: duckdb.DuckDBPyConnection,
        sql: str,
        max_rows: int,
        max_bytes: int,
        timeout: float,
        *,
        database: tuple[str, duckdb.DuckDBPyConnection] | None = None,
    ) -> tuple[pa.Table, bool]:
        with self._limited(cursor, timeout, database=database):
            return self._fetch_capped(cursor, sql, max_rows, max_bytes, timeout)

    @contextlib.contextmanager
    def _limited(
        self,
        cursor: duckdb.DuckDBPyConnection,
        timeout: float | None,
        *,
        database: tuple[str, duckdb.DuckDBPyConnection] | None = None,
    ) -> Iterator[None]:
        """The block's statement on ``cursor`` is interrupted past ``timeout`` (by the watchdog) and
        by :meth:`interrupt`; the ``QueryTimeout`` of the latter becomes a transient ``EngineError``.

        A statement stopped at its time or memory limit retires ``database`` (its key and the
        database the cursor came from): DuckDB's allocator keeps what a runaway took until the
        database is released, so the next statement of the catalog opens a fresh one and this one
        goes once its last cursor closes."""
        with self._dbs_guard:
            self._running[cursor] = False
        try:
            with (
                WATCHDOG.guard(timeout, cursor.interrupt) if timeout else contextlib.nullcontext(),
                statement_stop(cursor.interrupt),
            ):
                yield
        except QueryTimeout as exc:
            with self._dbs_guard:
                stopped = self._running.get(cursor, False)
            if stopped:
                raise EngineError("the service is stopping; run the statement again", transient=True) from exc
            self._retire(database)
            raise
        except LimitExceeded:
            self._retire(database)
            raise
        finally:
            with self._ended:
                self._running.pop(cursor, None)
                self._ended.notify_all()

    def interrupt(self) -> None:
        """Interrupt every statement running now and wait (up to ``INTERRUPT_WAIT_SECONDS``) until
        each has ended. An interrupt that reaches a cursor before its statement starts is lost, so the
        ones still registered are interrupted again on every round."""
        deadline = time.monotonic() + INTERRUPT_WAIT_SECONDS
        with self._ended:
            stopping = list(self._running)
            for cursor in stopping:
                self._running[cursor] = True
        while True:
            for cursor in stopping:
                with contextlib.suppress(duckdb.Error):  # its statement ended meanwhile
                    cursor.interrupt()
            with self._ended:
                stopping = [c for c in stopping if c in self._running]
                left = deadline - time.monotonic()
                if not stopping or left <= 0:
                    return
                self._ended.wait(min(left, 0.05))

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
                if size + batch.nbytes > max_bytes:
                    batch = _fitting(batch, max_bytes - size)
                    truncated = True
                    if batch.num_rows == 0 and not batches:
                        raise LimitExceeded(
                            f"not even one row of the result fits in {max_bytes} bytes; select fewer or shorter columns"
                        )
                batches.append(batch)
                rows += batch.num_rows
                size += batch.nbytes
                if truncated:
                    break
            return narrow_hugeints(pa.Table.from_batches(batches, schema=reader.schema), hugeints), truncated
        except duckdb.Error as exc:
            raise self._statement_error(exc, timeout) from exc
        except OSError as exc:  # DuckDB's errors while batches stream come through Arrow's reader
            raise self._stream_error(exc, timeout) from exc

    def _stream_error(self, exc: OSError, timeout: float | None) -> BaseException:
        """A DuckDB error raised while Arrow batches were read, as :meth:`_statement_error` says it."""
        text = str(exc)
        if "INTERRUPT" in text:
            return self._statement_error(duckdb.InterruptException(text), timeout)
        if "Out of Memory" in text:
            return self._statement_error(duckdb.OutOfMemoryException(text), timeout)
        return exc

    def _statement_error(self, exc: duckdb.Error, timeout: float | None) -> TsunamiError:
        """What a failed DuckDB statement means to the caller: interrupted by the watchdog, out of
        memory (after spilling what it could), or an error in the SQL."""
        if isinstance(exc, duckdb.InterruptException):
            limit = f"{timeout:g} s" if timeout else "its time limit"
            return QueryTimeout(f"the statement ran longer than {limit} and was stopped; add filters or aggregate")
        if isinstance(exc, duckdb.OutOfMemoryException):
            return LimitExceeded("the statement needs more memory than allowed; aggregate or filter")
        return InvalidInput(self._clean_message(exc))

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
                last = latest.history(1)[0].get("timestamp")
                if last is not None and when.timestamp() * 1000 > last:
                    # Databricks refuses a time after the last commit (DELTA_TIMESTAMP_GREATER_THAN_COMMIT)
                    # rather than reading the latest version, which a later commit would change.
                    raise InvalidInput(
                        f"table {ref.schema}.{ref.name} has no version at {when.isoformat()}: that is after its "
                        f"latest commit ({ms_to_dt(last)}); use a time at or before it, or no TIMESTAMP AS OF"
                    )
                return self._snapshots.at_timestamp(path, when)
        except DeltaError as exc:
            raise NotFound(f"table {ref.schema}.{ref.name} has no version at {timestamp or version}: {exc}") from exc
        return latest

    def _database(self, catalog: str | None) -> duckdb.DuckDBPyConnection:
        with self._dbs_guard:
            self._dbs_closed = False
            return self._dbs.get(catalog or "") or self._new_database(catalog)

    def _retire(self, database: tuple[str, duckdb.DuckDBPyConnection] | None) -> None:
        """The catalog's next statement gets a new database; the old one is released with its
        last cursor (statements still running on it finish)."""
        if database is None:
            return
        key, db = database
        with self._dbs_guard:
            if self._dbs.get(key) is db:
                del self._dbs[key]

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
        if self._memory_limit:
            db.execute("SET memory_limit = ?", [self._memory_limit])
            spill = self._layout.spill_dir(catalog)
            spill.parent.mkdir(parents=True, exist_ok=True)  # DuckDB makes only the last folder
            db.execute("SET temp_directory = ?", [str(spill)])
        allowed = [str(self._layout.catalog_dir(catalog)) + "/"] if catalog else []
        db.execute(f"SET allowed_directories = {allowed!r}")
        db.execute("SET enable_external_access = false")
        db.execute("SET autoinstall_known_extensions = false")
        db.execute("SET autoload_known_extensions = false")
        db.execute("SET TimeZone = 'UTC'")  # Databricks' default session zone
        # DuckDB keeps the bytes of every Parquet file it has read in memory, up to memory_limit, for
        # the life of the database: each new table version's files add to a worker's RSS (about 60 MB
        # over 600 overwrites measured). Local files are in the OS page cache anyway (no speed lost).
        db.execute("SET enable_external_file_cache = false")
        if self._threads:
            db.execute(f"SET threads = {int(self._threads)}")
        db.execute("SET lock_configuration = true")
        self._dbs[catalog or ""] = db
        return db

    def _clean_message(self, exc: BaseException) -> str:
        text = str(exc).split("\n\nLINE ")[0].strip()
        text = text.replace(str(self.root) + "/", "")
        text = re.sub(r"read_parquet\(\[[^\]]*\][^)]*\)", "<table>", text)
        return text[:800]
