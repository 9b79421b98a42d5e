"""The Engine contract: the port to the lakehouse.

Glossary
--------
catalog
    One per tenant (``tenant_<slug>``). Holds schemas ``bronze``, ``silver``, ``gold`` and the volume
    ``bronze.landing`` for raw files. Created idempotently by :meth:`Engine.ensure_catalog`.
table
    A Delta table ``catalog.schema.name`` (:class:`~servicetsunami.tenancy.TableRef`). Every write
    is one atomic commit that produces a new table *version*; readers see a consistent snapshot.
volume
    A folder of files inside a schema (``/Volumes/<catalog>/<schema>/<volume>/...`` on Databricks).

Semantics every engine honours
------------------------------
- :meth:`write_table` takes an Arrow stream, so memory stays bounded whatever the size. Modes:
  ``create`` (refuse if the table exists), ``append``, ``overwrite`` (new schema allowed) and
  ``merge`` (upsert on ``merge_keys``). New columns are added (schema evolution). A failed write
  leaves the table at the version it had; a failed ``create`` leaves no table behind.
  With an :class:`Idempotency` token the write is applied at most once: a token whose sequence is
  not newer than the last one committed for the same ``app_id`` is skipped (``skipped=True``).
- :meth:`query` runs a statement already checked by :func:`servicetsunami.sql.guard_query`. Results
  are capped by rows and bytes (``truncated=True`` when cut, inside a batch too: a result whose
  first rows are already past the byte cap comes back with the rows that fit, and one whose first
  row alone is past it is refused with :class:`~servicetsunami.errors.LimitExceeded`) and
  interrupted at the timeout (:class:`~servicetsunami.errors.QueryTimeout`). Tables resolve only
  inside the query's catalog.
- Time travel: :meth:`describe` and queries accept a version (``VERSION AS OF``) or a timestamp
  (``TIMESTAMP AS OF``); history lists commits newest first.

Errors: :class:`~servicetsunami.errors.NotFound` for a missing table or version,
:class:`~servicetsunami.errors.Conflict` for ``create`` on an existing table,
:class:`~servicetsunami.errors.NotSupported` for a call that needs a capability the engine lacks,
:class:`~servicetsunami.errors.EngineError` (``transient`` set) for failures of the engine itself.

Capabilities an engine lacks are declared in :attr:`Engine.capabilities`; callers and the contract
suite read them instead of testing for an engine's kind, and the suite checks that the engine
refuses what it declares it lacks with ``NotSupported``.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Literal

import pyarrow as pa

from servicetsunami.engines.models import ColumnInfo, HistoryEntry
from servicetsunami.errors import InvalidInput, NotFound, NotSupported
from servicetsunami.sql import GuardedQuery
from servicetsunami.tenancy import TableRef

WriteMode = Literal["create", "append", "overwrite", "merge"]


Stopper = Callable[[Callable[[], None]], Callable[[], None]]
_STOPPER: ContextVar[Stopper | None] = ContextVar("tsunami_statement_stopper", default=None)


@contextlib.contextmanager
def stoppable(stopper: Stopper, /) -> Iterator[None]:
    """Statements started in this block (this thread or task) can be stopped from elsewhere: an engine
    that can interrupt one hands its stop function to ``stopper`` when the statement starts and calls
    what ``stopper`` returned when it ends. A stopped statement raises like one past its timeout
    (:class:`~servicetsunami.errors.QueryTimeout`). This is how a job's task run stops its query when
    the run is canceled."""
    token = _STOPPER.set(stopper)
    try:
        yield
    finally:
        _STOPPER.reset(token)


@contextlib.contextmanager
def statement_stop(stop: Callable[[], None], /) -> Iterator[None]:
    """For engines: offer ``stop`` to the enclosing :func:`stoppable` block, if any, for this block."""
    stopper = _STOPPER.get()
    if stopper is None:
        yield
        return
    release = stopper(stop)
    try:
        yield
    finally:
        release()


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What an engine can do. Data, so nothing branches on an engine's name."""

    time_travel: bool = True
    merge: bool = True
    volumes: bool = True
    optimize: bool = True
    vacuum: bool = True
    column_comments: bool = True  # comments (Arrow field metadata ``comment``) are kept and described
    staged_parquet: bool = False  # new_stage / commit_stage: the caller writes Parquet files itself
    query_append: bool = True  # write_query with mode ``append``
    clusters: bool = False  # all-purpose clusters for code (list, get, start, terminate, resize)
    workspace_notebooks: bool = False  # notebooks in a workspace tree (import, export, list, delete)


@dataclass(frozen=True, slots=True)
class Idempotency:
    """A write's identity: ``app_id`` (e.g. a sync id) and a strictly increasing ``sequence``.

    Stored in the same commit as the rows (a Delta application transaction), so a retried write
    that already landed is recognised and skipped.
    """

    app_id: str
    sequence: int


@dataclass(frozen=True, slots=True)
class WriteResult:
    table: TableRef
    version: int
    rows: int
    skipped: bool = False


@dataclass(frozen=True, slots=True)
class ArrowResult:
    table: pa.Table
    truncated: bool
    elapsed_ms: float
    sql: str
    cached: bool = False  # answered from the engine's result cache without running


@dataclass(frozen=True, slots=True)
class TableDetail:
    ref: TableRef
    version: int
    columns: list[ColumnInfo]
    rows: int | None
    size_bytes: int | None
    files: int
    partition_columns: list[str]
    updated_at: datetime | None
    location: str
    comment: str | None = None
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VolumeFile:
    path: str
    size_bytes: int
    modified_at: datetime


@dataclass(frozen=True, slots=True)
class WarehouseInfo:
    """A SQL warehouse (compute that runs statements). Engines without such a thing show themselves
    as the one embedded warehouse."""

    id: str
    name: str
    state: str  # RUNNING | STARTING | STOPPED | STOPPING | DELETING | DELETED
    size: str
    kind: str  # the engine's kind
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    """An all-purpose cluster that runs notebooks and execution contexts (engines with the
    ``clusters`` capability)."""

    id: str
    name: str
    state: str  # PENDING | RUNNING | RESTARTING | RESIZING | TERMINATING | TERMINATED | ERROR | UNKNOWN
    state_message: str
    num_workers: int | None
    autoscale: tuple[int, int] | None  # (min_workers, max_workers)
    kind: str  # the engine's kind
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ClusterCommand:
    """A command of an execution context on a cluster, as the workspace reports it (engines with the
    ``clusters`` capability). ``status`` is the Command Execution API's: Queued, Running, Cancelling,
    Cancelled, Finished or Error; a command whose code raised is Finished with an ``error`` result.
    ``schema`` columns are ``{"name", "type"}`` with Databricks SQL type names."""

    id: str
    status: str
    result_type: str | None = None  # text | table | image | images | error
    data: Any = None
    schema: list[dict[str, str]] | None = None
    truncated: bool | None = None
    cause: str | None = None
    summary: str | None = None


EMBEDDED_WAREHOUSE_ID = "embedded"


class Engine(abc.ABC):
    """A lakehouse: tenant catalogs of Delta tables, read with SQL. See the module docstring."""

    kind: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    @abc.abstractmethod
    def ensure_catalog(self, catalog: str, /) -> None:
        """Create the catalog, its schemas and its landing volume if missing. Idempotent."""

    @abc.abstractmethod
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
        """Write an Arrow stream to ``ref`` as one commit. Column comments travel as Arrow field
        metadata under the key ``comment``."""

    def new_stage(self, ref: TableRef, /) -> Path:
        """An empty local folder where the caller writes Parquet files for :meth:`commit_stage`
        (only with ``capabilities.staged_parquet``). Lets a native writer such as DuckDB's ``COPY``
        produce the files, while the engine alone commits them."""
        raise NotSupported("staged Parquet writes are not available on this engine")

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
        """Commit the Parquet files in ``stage`` to ``ref`` as one commit, with the semantics of
        :meth:`write_table` (``merge`` upserts on ``merge_keys``). The stage is consumed whether the
        commit succeeds or not."""
        raise NotSupported("staged Parquet writes are not available on this engine")

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
        """Write every row of a guarded ``select`` (no row cap) to ``ref`` as one commit, with the
        semantics of :meth:`write_table`: a statement that fails part-way writes nothing. This is
        how silver and gold tables are built from SQL. Modes ``create``, ``overwrite``, (with
        ``capabilities.query_append``) ``append``, and ``merge`` on ``merge_keys`` (an upsert: rows
        whose keys match replace the table's, the others are added). A statement
        running past ``timeout_seconds`` is stopped (:class:`~servicetsunami.errors.QueryTimeout`)
        and writes nothing; without one the engine's own limit applies, if it has one."""
        raise NotSupported("writing a query's result to a table is not available on this engine")

    def _check_query_target(
        self, ref: TableRef, query: GuardedQuery, mode: WriteMode, /, merge_keys: list[str] | None = None
    ) -> None:
        """What every :meth:`write_query` refuses: anything but a SELECT, a table built from itself,
        a merge without keys, and an append on an engine without ``capabilities.query_append``."""
        if mode == "merge" and not merge_keys:
            raise InvalidInput("a query's result cannot be merged without merge keys; use overwrite or append")
        if mode == "append" and not self.capabilities.query_append:
            raise NotSupported(f"writing a query's result with mode {mode!r} is not available on this engine")
        if query.kind != "select":
            raise InvalidInput(f"only a SELECT can be written to a table, not {query.kind}")
        if any(t.table == ref for t in query.tables):
            raise InvalidInput(f"{ref.schema}.{ref.name} cannot be built from itself")

    def discard_stage(self, ref: TableRef, stage: Path, /) -> None:  # noqa: B027  # nothing staged, nothing to remove
        """Remove a stage that will not be committed (and a table folder it alone created)."""

    @abc.abstractmethod
    def query(self, query: GuardedQuery, /, *, max_rows: int, max_bytes: int, timeout_seconds: float) -> ArrowResult:
        """Run a guarded read-only statement (kinds ``select`` and ``explain``)."""

    @abc.abstractmethod
    def last_commit_for(self, ref: TableRef, app_id: str, /) -> tuple[int, dict[str, Any]] | None:
        """The newest sequence committed under ``app_id`` (see :class:`Idempotency`) and that
        commit's ``commit_info``; None when the table or the app id has no commit. This is how a
        resumed sync finds the cursor that landed with its rows."""

    @abc.abstractmethod
    def table_exists(self, ref: TableRef, /) -> bool: ...

    @abc.abstractmethod
    def list_tables(self, catalog: str, /, *, schema: str | None = None) -> list[TableDetail]:
        """Tables in a catalog (optionally one schema), sorted by schema and name."""

    @abc.abstractmethod
    def describe(
        self, ref: TableRef, /, *, version: int | None = None, timestamp: datetime | str | None = None
    ) -> TableDetail: ...

    @abc.abstractmethod
    def history(self, ref: TableRef, /, *, limit: int = 20) -> list[HistoryEntry]:
        """Commits, newest first."""

    @abc.abstractmethod
    def drop_table(self, ref: TableRef, /) -> None: ...

    @abc.abstractmethod
    def optimize(self, ref: TableRef, /) -> dict[str, Any]:
        """Compact small files. Returns engine metrics."""

    @abc.abstractmethod
    def vacuum(self, ref: TableRef, /, *, retention_hours: int = 168) -> list[str]:
        """Delete files no longer referenced by versions newer than the retention. Returns them."""

    @abc.abstractmethod
    def put_file(self, catalog: str, schema: str, volume: str, path: str, data: BinaryIO | Path, /) -> VolumeFile:
        """Store a file (an open binary stream, or a local file to copy) in a volume at a relative
        ``path`` (folders created). Atomic: a reader never sees a partial file."""

    @abc.abstractmethod
    def list_files(self, catalog: str, schema: str, volume: str, /, *, prefix: str = "") -> list[VolumeFile]: ...

    @abc.abstractmethod
    def open_file(self, catalog: str, schema: str, volume: str, path: str, /) -> BinaryIO: ...

    @abc.abstractmethod
    def delete_file(self, catalog: str, schema: str, volume: str, path: str, /) -> None: ...

    @abc.abstractmethod
    def local_path(self, catalog: str, schema: str, volume: str, path: str, /) -> str | None:
        """A filesystem path for a volume file when the engine keeps files locally, else None."""

    @abc.abstractmethod
    def ping(self) -> float:
        """Check the engine really answers; return latency in ms or raise EngineError."""

    def catalog_exists(self, catalog: str, /) -> bool | None:
        """Whether ``ensure_catalog`` made ``catalog`` (its schemas and landing volume); None when this
        engine cannot tell without creating it."""
        return None

    def interrupt(self) -> None:  # noqa: B027  # optional hook; statements on remote compute keep their own timeouts
        """Stop every statement running now (the service is stopping); each one's caller gets a
        transient :class:`~servicetsunami.errors.EngineError`. Later statements run as usual."""

    def close(self) -> None:  # noqa: B027  # optional hook; most engines hold nothing to release
        """Release connections and caches (statements still running are interrupted)."""

    # -- warehouses: engines with separate compute override these ------------------------------

    def list_warehouses(self) -> list[WarehouseInfo]:
        """The SQL warehouses statements may run on; an embedded engine is its own one warehouse."""
        return [self._embedded_warehouse()]

    def get_warehouse(self, warehouse_id: str, /) -> WarehouseInfo:
        if warehouse_id != EMBEDDED_WAREHOUSE_ID:
            raise NotFound(
                f"warehouse {warehouse_id!r} does not exist; the {self.kind} engine runs every statement on its "
                f"embedded warehouse {EMBEDDED_WAREHOUSE_ID!r}"
            )
        return self._embedded_warehouse()

    def start_warehouse(self, warehouse_id: str, /) -> WarehouseInfo:
        """Ask a warehouse to start (returns at once; poll :meth:`get_warehouse`). The embedded one
        always runs."""
        return self.get_warehouse(warehouse_id)

    # -- clusters: engines with the ``clusters`` capability override these ------------------------

    def list_clusters(self) -> list[ClusterInfo]:
        """The workspace's all-purpose clusters."""
        raise NotSupported(f"clusters are not available on the {self.kind} engine")

    def get_cluster(self, cluster_id: str, /) -> ClusterInfo:
        raise NotSupported(f"clusters are not available on the {self.kind} engine")

    def start_cluster(self, cluster_id: str, /) -> ClusterInfo:
        """Ask a terminated cluster to start (returns at once; poll :meth:`get_cluster`)."""
        raise NotSupported(f"clusters are not available on the {self.kind} engine")

    def terminate_cluster(self, cluster_id: str, /) -> ClusterInfo:
        """Ask a cluster to terminate (it can be started again; returns at once)."""
        raise NotSupported(f"clusters are not available on the {self.kind} engine")

    def resize_cluster(
        self, cluster_id: str, /, *, num_workers: int | None = None, autoscale: tuple[int, int] | None = None
    ) -> ClusterInfo:
        """Ask a running cluster for a fixed number of workers or an autoscale range."""
        raise NotSupported(f"clusters are not available on the {self.kind} engine")

    # -- execution contexts on clusters: engines with the ``clusters`` capability override these ----

    def create_cluster_context(self, cluster_id: str, /, *, language: str) -> str:
        """Ask for an execution context (``python`` or ``sql``) on a running cluster; its id at once
        (poll :meth:`cluster_context_status` until Running)."""
        raise NotSupported(f"execution contexts on clusters are not available on the {self.kind} engine")

    def cluster_context_status(self, cluster_id: str, context_id: str, /) -> str:
        """Pending, Running or Error."""
        raise NotSupported(f"execution contexts on clusters are not available on the {self.kind} engine")

    def execute_cluster_command(self, cluster_id: str, context_id: str, command: str, /, *, language: str) -> str:
        """Queue a command in a context; its id at once."""
        raise NotSupported(f"execution contexts on clusters are not available on the {self.kind} engine")

    def cluster_command_status(self, cluster_id: str, context_id: str, command_id: str, /) -> ClusterCommand:
        raise NotSupported(f"execution contexts on clusters are not available on the {self.kind} engine")

    def cancel_cluster_command(self, cluster_id: str, context_id: str, command_id: str, /) -> None:
        """Ask for a command to be cancelled (returns at once; poll its status)."""
        raise NotSupported(f"execution contexts on clusters are not available on the {self.kind} engine")

    def destroy_cluster_context(self, cluster_id: str, context_id: str, /) -> None:
        raise NotSupported(f"execution contexts on clusters are not available on the {self.kind} engine")

    # -- workspace notebooks: engines with the ``workspace_notebooks`` capability override these ------

    def put_workspace_notebook(self, path: str, source: str, /, *, language: str) -> None:
        """Store a notebook given as Databricks source text (``language`` python or sql) at an
        absolute workspace ``path``, replacing what is there; folders are created."""
        raise NotSupported(f"workspace notebooks are not available on the {self.kind} engine")

    def get_workspace_notebook(self, path: str, /) -> tuple[str, str]:
        """A workspace notebook as Databricks source text, with its language (python, sql, ...)."""
        raise NotSupported(f"workspace notebooks are not available on the {self.kind} engine")

    def list_workspace(self, folder: str, /) -> list[tuple[str, str]]:
        """What is directly in a workspace folder: (path, NOTEBOOK | DIRECTORY | FILE | ...)."""
        raise NotSupported(f"workspace notebooks are not available on the {self.kind} engine")

    def delete_workspace_object(self, path: str, /, *, recursive: bool = False) -> None:
        raise NotSupported(f"workspace notebooks are not available on the {self.kind} engine")

    def _embedded_warehouse(self) -> WarehouseInfo:
        return WarehouseInfo(
            id=EMBEDDED_WAREHOUSE_ID,
            name=f"{self.kind} engine (embedded, in this process)",
            state="RUNNING",
            size="this machine",
            kind=self.kind,
            detail={"note": "statements run in the server process; there is nothing to start or stop"},
        )
