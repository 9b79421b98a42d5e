"""Search a vector index: exact, HNSW, or hybrid with BM25, with filters; results capped and masked.

- **exact** (the default below ``vectors.hnsw_threshold`` rows): DuckDB's
  ``array_cosine_distance`` over the index's rows, filters in the same statement;
- **hnsw** (at or above the threshold): the usearch graph kept beside the table; with filters,
  more candidates are drawn and filtered, and the exact path answers when too few pass;
- **hybrid**: the vector candidates and BM25's (DuckDB ``fts``, loaded from its pip package, never
  downloaded), each side filtered, fused by weighted reciprocal rank: a row at rank ``r`` (from 1)
  of a side scores ``weight / (k + r)``, summed over the sides. The defaults (``k = 10``, equal
  weights, 20 candidates a side, ``vectors.hybrid_*``) come from ``benchmarks/vectors.py``'s
  labelled queries, chosen on one half and reported on the other: the classic ``k = 60`` over 50
  candidates lets rows that are middling on both sides push out the row one side ranks first.

An index is loaded once per table version in this process (its rows in an in-memory DuckDB with
the vectors as ``FLOAT[dim]``); a sync moves it to the next version. Scores: ``1 - cosine
distance`` (ann), the fused reciprocal-rank score (hybrid). Filters use the Databricks Vector
Search dictionary form: ``{"col": v}``, ``{"col": [v1, v2]}``, ``{"col <": v}`` (``<``, ``<=``,
``>``, ``>=``, ``!=``, ``NOT``, ``LIKE``).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pyarrow as pa

from servicetsunami.connectors.duckdb_support import load_packaged_extension, packaged_extensions_connection
from servicetsunami.errors import InvalidInput, NotFound, NotSupported
from servicetsunami.services.catalog.query import to_json_rows
from servicetsunami.services.governance.pii import mask_result
from servicetsunami.services.models import QueryColumn, QueryResult
from servicetsunami.services.vectors import build, workspace
from servicetsunami.services.vectors.embeddings import embed_texts, embedding_cache, load_embedder, normalise
from servicetsunami.sql import guard_query
from servicetsunami.tenancy import Principal, Scope

if TYPE_CHECKING:
    from usearch.index import Index

    from servicetsunami.services.container import Services

_FILTER_OPS = {"": "=", "=": "=", "!=": "!=", "NOT": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">=", "LIKE": "LIKE"}
_LOADED_MAX = 8


@dataclass
class LoadedIndex:
    """One version of an index, ready to search in this process."""

    spec: build.IndexSpec
    version: int
    dim: int
    con: duckdb.DuckDBPyConnection
    positions_of: dict[int, int]  # _row_id -> row position
    graph: Index | None = None
    fts: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self.con.cursor()


_loaded: OrderedDict[tuple[str, int], LoadedIndex] = OrderedDict()
_loaded_lock = threading.Lock()
_loading: dict[tuple[str, int], threading.Lock] = {}


def forget_loaded(index_id: str, /, *, keep_version: int | None = None) -> None:
    """Drop this process's loaded copies of an index (all, or all but ``keep_version``)."""
    with _loaded_lock:
        for key in [k for k in _loaded if k[0] == index_id and k[1] != keep_version]:
            _loaded.pop(key).con.close()


def _load(svc: Services, spec: build.IndexSpec, version: int, hnsw: bool) -> LoadedIndex:
    key = (spec.id, version)
    with _loaded_lock:
        found = _loaded.get(key)
        if found is not None:
            _loaded.move_to_end(key)
            return found
        gate = _loading.setdefault(key, threading.Lock())
    with gate:  # one thread loads a version; the others wait for it
        with _loaded_lock:
            found = _loaded.get(key)
            if found is not None:
                return found
        table = build.read_table(svc, spec.table, [*spec.columns, build.ROW_ID, build.EMBEDDING], version=version)
        vectors = build.as_matrix(table.column(build.EMBEDDING), what="the index table")
        dim = int(vectors.shape[1]) if table.num_rows else 1
        data = table.drop_columns([build.EMBEDDING]).append_column("_pos", pa.array(np.arange(table.num_rows)))
        data = data.append_column(
            "_vec", pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), type=pa.float32()), dim)
        )
        con = packaged_extensions_connection()
        con.register("_arrow", data)
        con.execute("CREATE TABLE docs AS SELECT * FROM _arrow")
        con.unregister("_arrow")
        ids = table.column(build.ROW_ID).to_numpy()
        loaded = LoadedIndex(
            spec=spec, version=version, dim=dim, con=con, positions_of={int(r): i for i, r in enumerate(ids)}
        )
        path = build.hnsw_path(svc, spec)
        if hnsw and path.exists():
            from usearch.index import Index

            loaded.graph = Index.restore(str(path), view=True)
        with _loaded_lock:
            _loaded[key] = loaded
            while len(_loaded) > _LOADED_MAX:
                _loaded.popitem(last=False)[1].con.close()
            _loading.pop(key, None)
        return loaded


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _filters_sql(filters: dict[str, Any] | None, columns: list[str]) -> tuple[str, list[Any]]:
    """A WHERE condition (``TRUE`` when none) and its parameters, from Databricks-style filters."""
    if not filters:
        return "TRUE", []
    if not isinstance(filters, dict):
        raise InvalidInput('filters is an object like {"category": "news", "year >=": 2020}')
    parts: list[str] = []
    params: list[Any] = []
    for key, value in filters.items():
        column, _, op = str(key).strip().partition(" ")
        op = op.strip().upper()
        if column not in columns:
            raise InvalidInput(f"filter on {column!r}: the index's columns are {', '.join(columns)}")
        if op not in _FILTER_OPS:
            raise InvalidInput(f"filter operator {op!r} is not one of =, !=, <, <=, >, >=, NOT, LIKE")
        sql_op = _FILTER_OPS[op]
        if isinstance(value, list):
            if sql_op not in ("=", "!="):
                raise InvalidInput(f"a list of values goes with = or NOT, not {op}")
            if not value:
                parts.append("FALSE" if sql_op == "=" else "TRUE")
                continue
            marks = ", ".join("?" for _ in value)
            parts.append(f"{_quote(column)} {'IN' if sql_op == '=' else 'NOT IN'} ({marks})")
            params.extend(value)
        elif value is None:
            parts.append(f"{_quote(column)} IS {'NOT ' if sql_op == '!=' else ''}NULL")
        elif isinstance(value, dict):
            raise InvalidInput(f"filter value of {key!r} must be a value or a list of values")
        elif sql_op == "LIKE":
            parts.append(f"CAST({_quote(column)} AS VARCHAR) ILIKE ?")
            params.append(f"%{value}%")
        else:
            parts.append(f"{_quote(column)} {sql_op} ?")
            params.append(value)
    return " AND ".join(parts), params


def _exact(loaded: LoadedIndex, query: np.ndarray, n: int, where: str, params: list[Any]) -> list[tuple[int, float]]:
    literal = "[" + ",".join(repr(float(x)) for x in query) + f"]::FLOAT[{loaded.dim}]"
    rows = (
        loaded.cursor()
        .execute(
            f"SELECT _pos, array_cosine_distance(_vec, {literal}) AS d FROM docs WHERE {where} "
            f"ORDER BY d, _pos LIMIT {int(n)}",
            params,
        )
        .fetchall()
    )
    return [(int(p), 1.0 - float(d)) for p, d in rows]


def _hnsw(loaded: LoadedIndex, query: np.ndarray, n: int, where: str, params: list[Any]) -> list[tuple[int, float]]:
    assert loaded.graph is not None
    draw = n if where == "TRUE" else min(len(loaded.positions_of), max(n * 10, 100))
    matches = loaded.graph.search(query, draw)
    found = [
        (loaded.positions_of[int(k)], 1.0 - float(d)) for k, d in zip(matches.keys, matches.distances, strict=True)
    ]
    if where == "TRUE":
        return found[:n]
    allowed = {
        int(p)
        for (p,) in loaded.cursor()
        .execute(
            f"SELECT _pos FROM docs WHERE _pos IN (SELECT UNNEST(?::BIGINT[])) AND {where}",
            [[p for p, _ in found], *params],
        )
        .fetchall()
    }
    kept = [(p, s) for p, s in found if p in allowed]
    if len(kept) < n and len(found) < len(loaded.positions_of):
        return _exact(loaded, query, n, where, params)  # the filter is too narrow for the graph's candidates
    return kept[:n]


def _bm25(loaded: LoadedIndex, text: str, n: int, where: str, params: list[Any]) -> list[tuple[int, float]]:
    column = loaded.spec.text_column
    if column is None:
        raise InvalidInput("hybrid search needs a text column; this index has only vectors")
    with loaded.lock:
        if not loaded.fts:
            load_packaged_extension(loaded.con, "fts")
            loaded.con.execute(f"PRAGMA create_fts_index('docs', '_pos', '{column}', overwrite=1)")
            loaded.fts = True
    rows = (
        loaded.cursor()
        .execute(
            f"SELECT _pos, s FROM (SELECT _pos, fts_main_docs.match_bm25(_pos, ?) AS s FROM docs WHERE {where}) "
            f"WHERE s IS NOT NULL ORDER BY s DESC, _pos LIMIT {int(n)}",
            [text, *params],
        )
        .fetchall()
    )
    return [(int(p), float(s)) for p, s in rows]


def fuse(
    vector_hits: list[tuple[int, float]],
    text_hits: list[tuple[int, float]],
    /,
    *,
    k: int,
    text_weight: float = 1.0,
) -> list[tuple[int, float]]:
    """Weighted reciprocal rank fusion of two rankings of row positions, best first: a row at rank
    ``r`` (from 1) scores ``1 / (k + r)`` from the vector side and ``text_weight / (k + r)`` from
    the text side; ties go to the lower position."""
    scores: dict[int, float] = {}
    for weight, ranking in ((1.0, vector_hits), (text_weight, text_hits)):
        for rank, (pos, _) in enumerate(ranking, start=1):
            scores[pos] = scores.get(pos, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def search_vectors(
    container: Services,
    principal: Principal,
    index: str,
    *,
    query_text: str | None = None,
    query_vector: list[float] | None = None,
    k: int = 10,
    filters: dict[str, Any] | None = None,
    query_type: str = "ann",
    columns: list[str] | None = None,
) -> dict[str, Any]:
    """The ``k`` rows of ``index`` nearest the query, best first.

    Returns ``{"columns": [...], "rows": [[...]], "scores": [...], "truncated": bool}`` (plus
    ``method``, ``hint`` and ``elapsed_ms``): ``k`` is cut to ``vectors.max_results`` and the query
    row cap (``truncated`` says so), and columns holding personal data are masked as in query
    results. ``query_type`` is ``ann`` (vectors only) or ``hybrid`` (vectors and BM25 over the text,
    needs ``query_text``)."""
    svc = container
    principal.require(Scope.READ)
    started = time.perf_counter()
    qtype = str(query_type).lower()
    if qtype not in ("ann", "hybrid"):
        raise InvalidInput("query_type is ann or hybrid")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InvalidInput("k is a positive integer")
    if query_text is None and query_vector is None:
        raise InvalidInput("give query_text or query_vector")
    if query_text is not None and (not isinstance(query_text, str) or len(query_text) > 100_000):
        raise InvalidInput("query_text is a string of at most 100,000 characters")
    if qtype == "hybrid" and not query_text:
        raise InvalidInput("hybrid search needs query_text (for BM25), with or without query_vector")
    from servicetsunami.services.vectors.indexes import find, spec_of  # indexes imports this module

    record = find(svc, principal, index)
    if record.state != "ready" or record.table_version is None:
        raise NotFound(f"vector index {record.name!r} is not built yet ({record.state}); wait for its run")
    spec = spec_of(record, catalog=principal.catalog)
    wanted = list(columns) if columns else spec.columns
    for c in wanted:
        if c not in spec.columns:
            raise InvalidInput(f"column {c!r} is not in the index; it has {', '.join(spec.columns)}")
    cap = min(svc.settings.vectors.max_results, svc.settings.query.max_rows)
    n = min(k, cap)
    truncated = k > n
    if record.meta.get("endpoint"):
        _filters_sql(filters, spec.columns)  # the same checks as in this process, before the workspace sees them
        names, rows, scores = workspace.query(
            svc,
            spec,
            columns=wanted,
            n=n,
            query_text=query_text,
            query_vector=query_vector,
            filters=filters,
            query_type=qtype,
        )
        data = pa.Table.from_pylist([dict(zip(names, r, strict=True)) for r in rows]) if rows else None
        return _answer(
            svc,
            principal,
            spec,
            wanted,
            data if data is not None else pa.table({c: pa.array([], pa.string()) for c in names}),
            scores,
            truncated=truncated,
            n=n,
            method=f"databricks-{qtype}",
            started=started,
        )
    use_hnsw = record.meta.get("hnsw_version") == record.table_version
    loaded = _load(svc, spec, record.table_version, use_hnsw)
    vector = _query_vector(svc, spec, loaded, query_text, query_vector)
    where, params = _filters_sql(filters, spec.columns)
    search = _hnsw if loaded.graph is not None else _exact
    method = "hnsw" if loaded.graph is not None else "exact"
    if qtype == "hybrid":
        assert query_text is not None
        v = svc.settings.vectors
        depth = max(v.hybrid_candidates, n)
        hits = fuse(
            search(loaded, vector, depth, where, params),
            _bm25(loaded, query_text, depth, where, params),
            k=v.hybrid_rrf_k,
            text_weight=v.hybrid_text_weight,
        )[:n]
        method += "+bm25"
    else:
        hits = search(loaded, vector, n, where, params)
    positions = [p for p, _ in hits]
    select = ", ".join(_quote(c) for c in wanted)
    table = (
        loaded.cursor()
        .execute(
            f"SELECT {select} FROM docs, "
            "(SELECT UNNEST(?::BIGINT[]) AS __p, generate_subscripts(?::BIGINT[], 1) AS __o) "
            "WHERE _pos = __p ORDER BY __o",
            [positions, positions],
        )
        .to_arrow_table()
    )
    return _answer(
        svc,
        principal,
        spec,
        wanted,
        table,
        [s for _, s in hits],
        truncated=truncated,
        n=n,
        method=method,
        started=started,
    )


def _answer(
    svc: Services,
    principal: Principal,
    spec: build.IndexSpec,
    wanted: list[str],
    table: pa.Table,
    scores: list[float],
    *,
    truncated: bool,
    n: int,
    method: str,
    started: float,
) -> dict[str, Any]:
    result = QueryResult(
        columns=[QueryColumn(name=f.name, type=str(f.type)) for f in table.schema],
        rows=to_json_rows(table),
        row_count=table.num_rows,
        truncated=truncated,
        hint=f"k cut to {n} (cap)" if truncated else None,
        elapsed_ms=0.0,
        sql="",
    )
    result = _masked(svc, principal, spec, wanted, result)
    return {
        "columns": [c.name for c in result.columns],
        "rows": result.rows,
        "scores": [round(s, 6) for s in scores],
        "truncated": truncated,
        "method": method,
        "hint": result.hint,
        "elapsed_ms": round((time.perf_counter() - started) * 1000, 2),
    }


def _query_vector(
    svc: Services,
    spec: build.IndexSpec,
    loaded: LoadedIndex,
    query_text: str | None,
    query_vector: list[float] | None,
) -> np.ndarray:
    if query_vector is not None:
        try:
            vector: np.ndarray = normalise(np.asarray([query_vector], dtype=np.float32))[0]
        except (TypeError, ValueError):
            raise InvalidInput("query_vector is a list of numbers") from None
        if vector.shape[0] != loaded.dim:
            raise InvalidInput(f"query_vector has {vector.shape[0]} numbers; this index's vectors have {loaded.dim}")
        return vector
    if spec.embedding_model is None:
        raise NotSupported("this index holds self-managed vectors and has no model to embed text: pass query_vector")
    assert query_text is not None
    embedder = load_embedder(svc.settings, spec.embedding_model)
    cache = embedding_cache(svc.settings)
    embedded: np.ndarray = embed_texts(embedder, [query_text], batch_size=1, cache=cache)[0]
    if embedded.shape[0] != loaded.dim:
        raise InvalidInput("the embedding model's vectors no longer match the index; sync it with full=true")
    return embedded


def _masked(
    svc: Services, principal: Principal, spec: build.IndexSpec, wanted: list[str], result: QueryResult
) -> QueryResult:
    """Masked as a query of these columns of the source table would be (their lineage decides)."""
    source = spec.source
    query = None
    if svc.engine.table_exists(source):
        query = guard_query(
            f"SELECT {', '.join(build.quote(c) for c in wanted)} FROM `{source.schema}`.`{source.name}`",
            catalog=principal.catalog,
        )
    return mask_result(svc, principal, result, query)
