"""Vector Search on the fake workspace (``/api/2.0/vector-search/...``, shapes of the SDK's
``EndpointInfo``, ``VectorIndex`` and ``QueryVectorIndexResponse``): endpoints (``PROVISIONING`` on
their first get, then ``ONLINE``), Delta Sync indexes over the workspace's Unity Catalog tables,
their sync, query and deletion.

An index is backed by the service's local implementation: a create or a sync reads the source
table, embeds the text column with the offline wordllama model (whatever
``embedding_model_endpoint_name`` says; self-managed vectors are read from their column), and keeps
the rows in an in-memory DuckDB searched with the same exact and BM25 code as the service
(``servicetsunami.services.vectors.search``), hybrid fused by reciprocal rank. A created or synced
index answers ``ready: false`` to its first get, as a real one does while its pipeline runs.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from servicetsunami.connectors.duckdb_support import packaged_extensions_connection
from servicetsunami.errors import InvalidInput, TsunamiError
from servicetsunami.services.vectors import build, search
from servicetsunami.services.vectors.embeddings import WordLlamaEmbedder, normalise
from servicetsunami.sql import guard_query
from servicetsunami.tenancy import TableRef

_READ_CAP = 2**40


@dataclass
class FakeIndex:
    info: dict[str, Any]
    loaded: search.LoadedIndex | None = None
    polls: int = 1  # gets left answering ready: false


@dataclass
class VectorSearchState:
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    endpoint_polls: dict[str, int] = field(default_factory=dict)
    indexes: dict[str, FakeIndex] = field(default_factory=dict)
    queries: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)


_embedder: WordLlamaEmbedder | None = None
_embedder_lock = threading.Lock()


def _embed(texts: list[str]) -> np.ndarray:
    global _embedder
    with _embedder_lock:
        if _embedder is None:
            _embedder = WordLlamaEmbedder()
    return _embedder.embed(texts)


def routes(handler: Callable[[Any], Any], error: Callable[[int, str, str], JSONResponse]) -> list[Route]:
    def missing(what: str, name: str) -> JSONResponse:
        return error(404, "RESOURCE_DOES_NOT_EXIST", f"{what} '{name}' does not exist.")

    def endpoint_info(vs: VectorSearchState, name: str, *, poll: bool) -> dict[str, Any]:
        with vs.lock:
            info = dict(vs.endpoints[name])
            left = vs.endpoint_polls.get(name, 0)
            if poll and left > 0:
                vs.endpoint_polls[name] = left - 1
            info["num_indexes"] = sum(1 for i in vs.indexes.values() if i.info["endpoint_name"] == name)
        info["endpoint_status"] = {"state": "ONLINE" if left <= 0 else "PROVISIONING"}
        return info

    def create_endpoint(state: Any, request: Request, body: bytes) -> Response:
        spec = json.loads(body or b"{}")
        name, kind = spec.get("name"), spec.get("endpoint_type")
        vs: VectorSearchState = state.vector_search
        if not name or kind not in ("STANDARD", "STORAGE_OPTIMIZED"):
            return error(400, "INVALID_PARAMETER_VALUE", "name and endpoint_type are required")
        with vs.lock:
            if name in vs.endpoints:
                return error(409, "RESOURCE_ALREADY_EXISTS", f"Endpoint with name '{name}' already exists.")
            now = int(time.time() * 1000)
            vs.endpoints[name] = {
                "name": name,
                "id": uuid.uuid4().hex,
                "endpoint_type": kind,
                "creator": "fake@example.com",
                "creation_timestamp": now,
                "last_updated_timestamp": now,
            }
            vs.endpoint_polls[name] = 1
        return JSONResponse(endpoint_info(vs, name, poll=False))

    def get_endpoint(state: Any, request: Request, body: bytes) -> Response:
        name = request.path_params["name"]
        if name not in state.vector_search.endpoints:
            return missing("Vector search endpoint", name)
        return JSONResponse(endpoint_info(state.vector_search, name, poll=True))

    def list_endpoints(state: Any, request: Request, body: bytes) -> Response:
        vs: VectorSearchState = state.vector_search
        return JSONResponse({"endpoints": [endpoint_info(vs, n, poll=False) for n in sorted(vs.endpoints)]})

    def delete_endpoint(state: Any, request: Request, body: bytes) -> Response:
        name = request.path_params["name"]
        vs: VectorSearchState = state.vector_search
        with vs.lock:
            if vs.endpoints.pop(name, None) is None:
                return missing("Vector search endpoint", name)
            for index in [n for n, i in vs.indexes.items() if i.info["endpoint_name"] == name]:
                vs.indexes.pop(index)
        return JSONResponse({})

    def create_index(state: Any, request: Request, body: bytes) -> Response:
        spec = json.loads(body or b"{}")
        vs: VectorSearchState = state.vector_search
        name, endpoint, key = spec.get("name"), spec.get("endpoint_name"), spec.get("primary_key")
        sync = spec.get("delta_sync_index_spec")
        if spec.get("index_type") != "DELTA_SYNC" or not isinstance(sync, dict):
            return error(400, "INVALID_PARAMETER_VALUE", "this workspace serves DELTA_SYNC indexes")
        if not name or len(str(name).split(".")) != 3 or not key or not sync.get("source_table"):
            return error(400, "INVALID_PARAMETER_VALUE", "name (catalog.schema.index), primary_key and source_table")
        sources = sync.get("embedding_source_columns") or []
        vectors = sync.get("embedding_vector_columns") or []
        if len(sources) + len(vectors) != 1:
            return error(
                400, "INVALID_PARAMETER_VALUE", "give one embedding_source_columns or embedding_vector_columns"
            )
        with vs.lock:
            if endpoint not in vs.endpoints:
                return missing("Vector search endpoint", str(endpoint))
            if name in vs.indexes:
                return error(409, "RESOURCE_ALREADY_EXISTS", f"Index '{name}' already exists.")
            info = {
                "name": name,
                "endpoint_name": endpoint,
                "primary_key": key,
                "index_type": "DELTA_SYNC",
                "creator": "fake@example.com",
                "delta_sync_index_spec": {
                    "source_table": sync["source_table"],
                    "pipeline_type": sync.get("pipeline_type", "TRIGGERED"),
                    "columns_to_sync": list(sync.get("columns_to_sync") or []),
                    "embedding_source_columns": sources or None,
                    "embedding_vector_columns": vectors or None,
                    "pipeline_id": uuid.uuid4().hex,
                },
            }
            index = FakeIndex(info={k: v for k, v in info.items() if v is not None})
            try:
                index.loaded = _load(state, index.info)
            except TsunamiError as exc:
                return error(400 if isinstance(exc, InvalidInput) else 404, _code(exc), exc.message)
            vs.indexes[name] = index
        return JSONResponse(_described(index, poll=False))

    def get_index(state: Any, request: Request, body: bytes) -> Response:
        name = request.path_params["name"]
        index = state.vector_search.indexes.get(name)
        if index is None:
            return missing("Index", name)
        with state.vector_search.lock:
            return JSONResponse(_described(index, poll=True))

    def list_indexes(state: Any, request: Request, body: bytes) -> Response:
        vs: VectorSearchState = state.vector_search
        endpoint = request.query_params.get("endpoint_name")
        return JSONResponse(
            {
                "vector_indexes": [
                    {k: i.info[k] for k in ("name", "endpoint_name", "primary_key", "index_type", "creator")}
                    for n, i in sorted(vs.indexes.items())
                    if i.info["endpoint_name"] == endpoint
                ]
            }
        )

    def delete_index(state: Any, request: Request, body: bytes) -> Response:
        name = request.path_params["name"]
        with state.vector_search.lock:
            if state.vector_search.indexes.pop(name, None) is None:
                return missing("Index", name)
        return JSONResponse({})

    def sync_index(state: Any, request: Request, body: bytes) -> Response:
        name = request.path_params["name"]
        vs: VectorSearchState = state.vector_search
        with vs.lock:
            index = vs.indexes.get(name)
            if index is None:
                return missing("Index", name)
            try:
                index.loaded = _load(state, index.info)
            except TsunamiError as exc:
                return error(400 if isinstance(exc, InvalidInput) else 404, _code(exc), exc.message)
            index.polls = 1
        return JSONResponse({})

    def query_index(state: Any, request: Request, body: bytes) -> Response:
        name = request.path_params["name"]
        vs: VectorSearchState = state.vector_search
        index = vs.indexes.get(name)
        if index is None or index.loaded is None:
            return missing("Index", name)
        spec = json.loads(body or b"{}")
        vs.queries.append(spec)
        try:
            names, rows = _query(index.loaded, spec)
        except InvalidInput as exc:
            return error(400, "INVALID_PARAMETER_VALUE", exc.message)
        return JSONResponse(
            {
                "manifest": {"column_count": len(names), "columns": [{"name": n} for n in names]},
                "result": {"row_count": len(rows), "data_array": rows},
            }
        )

    return [
        Route("/api/2.0/vector-search/endpoints", handler(create_endpoint), methods=["POST"]),
        Route("/api/2.0/vector-search/endpoints", handler(list_endpoints), methods=["GET"]),
        Route("/api/2.0/vector-search/endpoints/{name}", handler(get_endpoint), methods=["GET"]),
        Route("/api/2.0/vector-search/endpoints/{name}", handler(delete_endpoint), methods=["DELETE"]),
        Route("/api/2.0/vector-search/indexes", handler(create_index), methods=["POST"]),
        Route("/api/2.0/vector-search/indexes", handler(list_indexes), methods=["GET"]),
        Route("/api/2.0/vector-search/indexes/{name}", handler(get_index), methods=["GET"]),
        Route("/api/2.0/vector-search/indexes/{name}", handler(delete_index), methods=["DELETE"]),
        Route("/api/2.0/vector-search/indexes/{name}/sync", handler(sync_index), methods=["POST"]),
        Route("/api/2.0/vector-search/indexes/{name}/query", handler(query_index), methods=["POST", "GET"]),
    ]


def _code(exc: TsunamiError) -> str:
    return "INVALID_PARAMETER_VALUE" if isinstance(exc, InvalidInput) else "RESOURCE_DOES_NOT_EXIST"


def _described(index: FakeIndex, *, poll: bool) -> dict[str, Any]:
    left = index.polls
    if poll and left > 0:
        index.polls = left - 1
    rows = len(index.loaded.positions_of) if index.loaded is not None else 0
    ready = left <= 0
    return index.info | {
        "status": {
            "ready": ready,
            "indexed_row_count": rows,
            "message": "Index is ready" if ready else "Index is syncing",
        }
    }


def _spec(info: dict[str, Any]) -> build.IndexSpec:
    sync = info["delta_sync_index_spec"]
    sources, vectors = sync.get("embedding_source_columns") or [], sync.get("embedding_vector_columns") or []
    catalog, _, name = info["name"].split(".")
    return build.IndexSpec(
        id=info["name"],
        tenant_id="",
        name=name,
        catalog=catalog,
        source_table=sync["source_table"],
        primary_key=info["primary_key"],
        text_column=sources[0]["name"] if sources else None,
        embedding_model=sources[0].get("embedding_model_endpoint_name") if sources else None,
        embedding_column=vectors[0]["name"] if vectors else None,
        columns_to_sync=tuple(sync.get("columns_to_sync") or ()),
        table_version=None,
        hnsw_version=None,
    )


def _load(state: Any, info: dict[str, Any]) -> search.LoadedIndex:
    """Read the source table and embed it: the index's rows, ready to search."""
    spec = _spec(info)
    parts = spec.source_table.split(".")
    if len(parts) != 3:
        raise InvalidInput("source_table is catalog.schema.table")
    source = TableRef(*parts)
    if not state.engine.table_exists(source):
        raise TsunamiError(f"Table '{spec.source_table}' does not exist.")
    wanted = [*spec.columns, *([spec.embedding_column] if spec.embedding_column else [])]
    sql = f"SELECT {', '.join(build.quote(c) for c in wanted)} FROM `{source.schema}`.`{source.name}`"
    table = state.engine.query(
        guard_query(sql, catalog=source.catalog), max_rows=_READ_CAP, max_bytes=_READ_CAP, timeout_seconds=600
    ).table
    if spec.embedding_column is not None:
        vectors = normalise(build.as_matrix(table.column(spec.embedding_column), what="the vector column"))
        table = table.drop_columns([spec.embedding_column])
    else:
        assert spec.text_column is not None
        vectors = _embed([str(t or "") for t in table.column(spec.text_column).to_pylist()])
    dim = int(vectors.shape[1]) if table.num_rows else 1
    data = table.append_column("_pos", pa.array(np.arange(table.num_rows)))
    data = data.append_column(
        "_vec", pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), type=pa.float32()), dim)
    )
    con = packaged_extensions_connection()
    con.register("_arrow", data)
    con.execute("CREATE TABLE docs AS SELECT * FROM _arrow")
    con.unregister("_arrow")
    return search.LoadedIndex(
        spec=spec, version=0, dim=dim, con=con, positions_of={i: i for i in range(table.num_rows)}
    )


def _query(loaded: search.LoadedIndex, spec: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    columns = list(spec.get("columns") or [])
    for c in columns:
        if c not in loaded.spec.columns:
            raise InvalidInput(f"Column {c} is not in the index.")
    if not columns:
        raise InvalidInput("columns is required")
    n = int(spec.get("num_results") or 10)
    qtype = str(spec.get("query_type") or "ANN").upper()
    text, vector = spec.get("query_text"), spec.get("query_vector")
    if vector is not None:
        query = normalise(np.asarray([vector], dtype=np.float32))[0]
        if query.shape[0] != loaded.dim:
            raise InvalidInput(f"query_vector has {query.shape[0]} dimensions, the index {loaded.dim}")
    elif text and loaded.spec.embedding_column is None:
        query = _embed([text])[0]
    else:
        raise InvalidInput("query_vector is required for an index with self-managed vectors")
    filters = json.loads(spec["filters_json"]) if spec.get("filters_json") else None
    where, params = search._filters_sql(filters, loaded.spec.columns)
    if qtype == "HYBRID":
        if not text:
            raise InvalidInput("query_text is required for HYBRID queries")
        depth = max(50, 4 * n)
        hits = search.fuse(
            search._exact(loaded, query, depth, where, params), search._bm25(loaded, text, depth, where, params), k=60
        )[:n]
    elif qtype == "ANN":
        hits = search._exact(loaded, query, n, where, params)
    else:
        raise InvalidInput(f"query_type {qtype} is not ANN or HYBRID here")
    select = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
    rows: list[list[Any]] = []
    cursor = loaded.cursor()
    for pos, score in hits:
        found = cursor.execute(f"SELECT {select} FROM docs WHERE _pos = ?", [pos]).fetchone()
        assert found is not None
        rows.append([*(_plain(v) for v in found), score])
    return [*columns, "score"], rows


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)
