"""Indexes held by Databricks Vector Search (DESIGN.md section 12).

On the Databricks engine with ``vectors.databricks_endpoint`` set, a new index is a Delta Sync
index on that endpoint (created when the workspace has none by that name), named like its table
would be, ``<catalog>.gold.<name>``, over the source table in the tenant's catalog: managed
embeddings (``embedding_source_columns`` with a serving endpoint: the index's ``databricks:<endpoint>``
model, else ``vectors.databricks_embedding_endpoint``) or self-managed ones (``embedding_vector_columns``).
The workspace embeds, syncs and searches; this module starts a build or sync, waits for the index to
be ready, and maps a query to ``query_index``. Without the setting, or on another engine, indexes are
built and searched in this process (``build``, ``search``). An index remembers its endpoint, so a
change of the setting does not move existing indexes.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from servicetsunami.engines.databricks.vectorsearch import VectorSearch
from servicetsunami.errors import Cancelled, EngineError, InvalidInput, LimitExceeded, NotSupported
from servicetsunami.services.vectors import build

if TYPE_CHECKING:
    from collections.abc import Callable

    from servicetsunami.services.container import Services

_POLL_SECONDS = 0.5
_DATABRICKS_MODEL = "databricks:"


def endpoint_for_new_index(svc: Services, /) -> str | None:
    """The Vector Search endpoint new indexes go to, or None when they are built in this process."""
    name = svc.settings.vectors.databricks_endpoint
    return name if name and isinstance(getattr(svc.engine, "vector_search", None), VectorSearch) else None


def managed_model(svc: Services, model: str, /) -> str:
    """The ``databricks:<endpoint>`` model the workspace embeds an index's text with."""
    if model.startswith(_DATABRICKS_MODEL):
        return model
    return _DATABRICKS_MODEL + svc.settings.vectors.databricks_embedding_endpoint


def _client(svc: Services) -> VectorSearch:
    found = getattr(svc.engine, "vector_search", None)
    if not isinstance(found, VectorSearch):
        raise NotSupported("this index lives in Databricks Vector Search; run the service on the Databricks engine")
    return found


def sync(
    svc: Services,
    spec: build.IndexSpec,
    endpoint: str,
    /,
    *,
    progress: Callable[..., object],
    cancelled: Callable[[], bool],
) -> build.SyncStats:
    """Create the Delta Sync index (first build) or trigger its sync, and wait until it is ready."""
    vs = _client(svc)
    name = str(spec.table)
    deadline = time.monotonic() + svc.settings.vectors.build_timeout_seconds
    waiting = threading.Event()

    def wait_until(what: str, done: Callable[[], bool]) -> None:
        while not done():
            if cancelled():
                raise Cancelled(f"stopped while waiting for {what}")
            if time.monotonic() > deadline:
                raise LimitExceeded(f"{what} took longer than vectors.build_timeout_seconds")
            waiting.wait(_POLL_SECONDS)

    progress(message=f"waiting for vector search endpoint {endpoint}", force=True)
    wait_until(f"vector search endpoint {endpoint} to be online", lambda: vs.endpoint_online(endpoint))
    source_version = svc.engine.describe(spec.source).version
    existing = vs.get_index(name)
    if existing is None:
        dim = None
        if spec.embedding_column is not None:
            first = build.read_table(svc, spec.source, [spec.embedding_column], version=None).slice(0, 1)
            dim = len(first.column(0)[0].as_py() or []) if first.num_rows else None
        model = spec.embedding_model or ""
        vs.create_delta_sync_index(
            name,
            endpoint=endpoint,
            source_table=spec.source_table,
            primary_key=spec.primary_key,
            columns_to_sync=[c for c in spec.columns if c != spec.primary_key],
            text_column=spec.text_column,
            embedding_endpoint=model.removeprefix(_DATABRICKS_MODEL) if spec.embedding_column is None else None,
            embedding_column=spec.embedding_column,
            embedding_dimension=dim,
        )
    else:
        vs.sync_index(name)
    progress(message=f"waiting for vector index {name} to sync", force=True)
    status: dict[str, Any] = {}

    def ready() -> bool:
        found = vs.get_index(name)
        if found is None:
            raise EngineError(f"the workspace dropped vector index {name} while it synced")
        status.update(found.get("status") or {})
        return bool(status.get("ready"))

    wait_until(f"vector index {name} to be ready", ready)
    rows = int(status.get("indexed_row_count") or 0)
    return build.SyncStats(
        rows=rows,
        source_version=source_version,
        table_version=(spec.table_version or 0) + 1,
        extra={"endpoint": endpoint, "created": existing is None},
    )


def delete(svc: Services, spec: build.IndexSpec, /) -> None:
    _client(svc).delete_index(str(spec.table))


def query(
    svc: Services,
    spec: build.IndexSpec,
    /,
    *,
    columns: list[str],
    n: int,
    query_text: str | None,
    query_vector: list[float] | None,
    filters: dict[str, Any] | None,
    query_type: str,
) -> tuple[list[str], list[list[Any]], list[float]]:
    """The columns, rows and scores ``query_index`` answers, best first."""
    if query_vector is not None and (
        not isinstance(query_vector, list)
        or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in query_vector)
    ):
        raise InvalidInput("query_vector is a list of numbers")
    if spec.embedding_model is None and query_vector is None:
        raise NotSupported("this index holds self-managed vectors and has no model to embed text: pass query_vector")
    names, rows = _client(svc).query_index(
        str(spec.table),
        columns=columns,
        num_results=n,
        query_text=query_text,
        query_vector=[float(x) for x in query_vector] if query_vector is not None else None,
        filters=filters,
        query_type=query_type,
    )
    scores = [float(r[-1]) for r in rows]
    return names[: len(columns)], [r[: len(columns)] for r in rows], scores
