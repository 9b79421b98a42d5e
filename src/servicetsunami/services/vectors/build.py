"""Building and syncing an index table: the source table's rows at one version, their embeddings,
written as one Delta commit to ``<catalog>.vectors.<index>``; and the HNSW graph beside it.

A sync compares the source with what the index holds, by primary key and two hashes per row (of
the text, and of every synced value), so that only added rows and rows whose text changed are
embedded; rows whose other columns changed keep their vector; rows gone from the source leave the
index. Each row keeps a stable ``_row_id`` (the key in the HNSW graph), so the graph is updated in
place (removed and added keys) rather than rebuilt.

Why the index table lives in ``gold``, beside the tables it is built from: Databricks names a
Vector Search index like a table (``catalog.schema.name``, usually in its source's schema), and
``gold`` exists in every tenant catalog on every engine, with the grants already in place, so no
engine needs a new schema. The index table is a table like the others (``SELECT * FROM
gold.<index>`` reads it, like Databricks' embedding writeback tables); an index may not take the
name of a table that is already there, and no index is built from another index's table.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from servicetsunami.errors import Cancelled, InvalidInput
from servicetsunami.services.vectors.embeddings import (
    Vectors,
    embed_texts,
    embedding_cache,
    load_embedder,
)
from servicetsunami.sql import guard_query
from servicetsunami.tenancy import TableRef, check_identifier

if TYPE_CHECKING:
    from usearch.index import Index

    from servicetsunami.services.container import Services

logger = logging.getLogger(__name__)

INDEX_SCHEMA = "gold"
EMBEDDING = "_embedding"
ROW_ID = "_row_id"
TEXT_HASH = "_text_hash"
ROW_HASH = "_row_hash"
SYSTEM_COLUMNS = (EMBEDDING, ROW_ID, TEXT_HASH, ROW_HASH)
_EMBED_CHUNK = 4096  # texts per progress report and cancel check
_READ_CAP = 2**40  # reads of whole tables for an index are bounded by the run's timeout, not a row cap


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """What a sync needs to know about an index (from its store row)."""

    id: str
    tenant_id: str
    name: str
    catalog: str
    source_table: str
    primary_key: str
    text_column: str | None
    embedding_model: str | None
    embedding_column: str | None
    columns_to_sync: tuple[str, ...]
    table_version: int | None
    hnsw_version: int | None

    @property
    def source(self) -> TableRef:
        catalog, schema, name = self.source_table.split(".")
        return TableRef(catalog, schema, name)

    @property
    def table(self) -> TableRef:
        return TableRef(self.catalog, INDEX_SCHEMA, self.name)

    @property
    def columns(self) -> list[str]:
        """The index's data columns, in order: key, text, synced columns."""
        out = [self.primary_key]
        for c in (self.text_column, *self.columns_to_sync):
            if c is not None and c not in out:
                out.append(c)
        return out


@dataclass(slots=True)
class SyncStats:
    rows: int = 0
    added: int = 0
    changed: int = 0
    deleted: int = 0
    embedded: int = 0
    reused: int = 0
    source_version: int | None = None
    table_version: int | None = None
    dim: int | None = None
    written: bool = False
    hnsw: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "added": self.added,
            "changed": self.changed,
            "deleted": self.deleted,
            "embedded": self.embedded,
            "reused": self.reused,
            "source_version": self.source_version,
            "table_version": self.table_version,
            "dim": self.dim,
            "written": self.written,
            "hnsw": self.hnsw,
            **self.extra,
        }


Progress = Callable[..., object]


def quote(name: str, /) -> str:
    return "`" + (name if name in SYSTEM_COLUMNS else check_identifier(name, what="column")) + "`"


def read_table(svc: Services, ref: TableRef, columns: list[str], /, *, version: int | None) -> pa.Table:
    """Every row of ``columns`` of ``ref`` (at ``version``) through the guarded read path."""
    at = f" VERSION AS OF {int(version)}" if version is not None else ""
    sql = f"SELECT {', '.join(quote(c) for c in columns)} FROM `{ref.schema}`.`{ref.name}`{at}"
    guarded = guard_query(sql, catalog=ref.catalog)
    result = svc.engine.query(
        guarded, max_rows=_READ_CAP, max_bytes=_READ_CAP, timeout_seconds=svc.settings.vectors.build_timeout_seconds
    )
    return result.table


def as_matrix(column: pa.ChunkedArray | pa.Array, /, *, what: str) -> Vectors:
    """A list<float> column as an (n, dim) float32 matrix; every row must have the same length."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(array)
    if n == 0:
        return np.zeros((0, 0), dtype=np.float32)
    if array.null_count:
        raise InvalidInput(f"{what} has rows without a vector; every row needs one")
    lengths = pc.list_value_length(array)
    low, high = pc.min(lengths).as_py(), pc.max(lengths).as_py()
    if low != high or not low:
        raise InvalidInput(f"{what} holds vectors of different lengths ({low} to {high}); they must all be equal")
    flat = np.asarray(array.flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
    return flat.reshape(n, int(low))


def _digest(value: Any) -> str:
    return hashlib.blake2b(repr(value).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def hnsw_path(svc: Services, spec: IndexSpec, /) -> Path:
    """Where the HNSW graph of an index is kept: in the service's data folder, out of reach of the
    tenant's own files (a volume could be rewritten by tenant code, and a graph file is read by a C++
    loader)."""
    return svc.settings.resolved_home / "vectors" / spec.tenant_id / f"{spec.id}.usearch"


def new_hnsw(dim: int, /) -> Index:
    from usearch.index import Index

    return Index(ndim=dim, metric="cos", dtype="f32", connectivity=16, expansion_add=128, expansion_search=64)


def _save_hnsw(graph: Index, path: Path, /) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    graph.save(str(tmp))
    os.replace(tmp, path)


def sync_index(
    svc: Services, spec: IndexSpec, /, *, progress: Progress, cancelled: Callable[[], bool], full: bool = False
) -> SyncStats:
    """Bring the index table (and its HNSW graph) to the source table's current version. With
    ``full``, every row is re-embedded (the cache still answers for texts seen before)."""
    stats = SyncStats()
    source = spec.source
    detail = svc.engine.describe(source)
    stats.source_version = detail.version
    wanted = list(spec.columns)
    if spec.embedding_column is not None:
        wanted.append(spec.embedding_column)
    src = read_table(svc, source, wanted, version=detail.version)
    n = src.num_rows
    keys = src.column(spec.primary_key).to_pylist()
    if any(k is None for k in keys):
        raise InvalidInput(f"the primary key {spec.primary_key!r} has empty values; every row needs a key")
    if len(set(keys)) != n:
        raise InvalidInput(f"the primary key {spec.primary_key!r} has repeated values; it must be unique")
    texts = (
        ["" if t is None else str(t) for t in src.column(spec.text_column).to_pylist()]
        if spec.text_column is not None
        else None
    )
    value_columns = [src.column(c).to_pylist() for c in spec.columns]
    if spec.embedding_column is not None and n:  # vectors hashed from their bytes, not their repr
        matrix = as_matrix(src.column(spec.embedding_column), what=f"the column {spec.embedding_column!r}")
        value_columns.append([hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in matrix])
    row_hashes = [_digest(row) for row in zip(*value_columns, strict=True)] if n else []
    text_hashes = [_digest(t) for t in texts] if texts is not None else list(row_hashes)

    old_rows: dict[Any, tuple[int, str, str, int]] = {}
    old_vectors: Vectors | None = None
    exists = spec.table_version is not None and svc.engine.table_exists(spec.table)
    if exists:
        old = read_table(svc, spec.table, [spec.primary_key, ROW_ID, TEXT_HASH, ROW_HASH, EMBEDDING], version=None)
        old_vectors = as_matrix(old.column(EMBEDDING), what="the index table")
        for pos, (k, rid, th, rh) in enumerate(
            zip(
                old.column(spec.primary_key).to_pylist(),
                old.column(ROW_ID).to_pylist(),
                old.column(TEXT_HASH).to_pylist(),
                old.column(ROW_HASH).to_pylist(),
                strict=True,
            )
        ):
            old_rows[k] = (rid, th, rh, pos)

    next_id = max((r[0] for r in old_rows.values()), default=-1) + 1
    row_ids = np.empty(n, dtype=np.int64)
    reuse_from = np.full(n, -1, dtype=np.int64)  # position in the old table whose vector a row keeps
    to_embed: list[int] = []
    for i, key in enumerate(keys):
        found = old_rows.get(key)
        if found is None:
            stats.added += 1
            row_ids[i] = next_id
            next_id += 1
            to_embed.append(i)
            continue
        rid, th, rh, pos = found
        row_ids[i] = rid
        if rh != row_hashes[i]:
            stats.changed += 1
        if th == text_hashes[i] and not full:
            reuse_from[i] = pos
        else:
            to_embed.append(i)
    stats.deleted = len(old_rows.keys() - set(keys)) if old_rows else 0
    stats.rows = n
    if exists and not full and not (stats.added or stats.changed or stats.deleted):
        stats.table_version = spec.table_version
        stats.hnsw = spec.hnsw_version == spec.table_version and hnsw_path(svc, spec).exists()
        progress(done=n, total=n, unit="rows", message="nothing changed in the source", force=True)
        return stats

    new_vectors = _vectors_for(svc, spec, src, texts, to_embed, progress=progress, cancelled=cancelled)
    dim = new_vectors.shape[1] if len(to_embed) else (old_vectors.shape[1] if old_vectors is not None else 0)
    if not dim and n:
        raise InvalidInput("the index has rows but no vectors")
    vectors = np.zeros((n, dim), dtype=np.float32)
    if to_embed:
        vectors[np.asarray(to_embed, dtype=np.int64)] = new_vectors
    kept = np.nonzero(reuse_from >= 0)[0]
    if len(kept):
        assert old_vectors is not None
        if old_vectors.shape[1] != dim:
            raise InvalidInput("the new vectors' length differs from the index's; rebuild it with full=true")
        vectors[kept] = old_vectors[reuse_from[kept]]
    stats.embedded = len(to_embed)
    stats.reused = len(kept)
    stats.dim = dim or None

    columns = {c: src.column(c) for c in spec.columns}
    columns[ROW_ID] = pa.array(row_ids, type=pa.int64())
    columns[TEXT_HASH] = pa.array(text_hashes, type=pa.string())
    columns[ROW_HASH] = pa.array(row_hashes, type=pa.string())
    offsets = pa.array(np.arange(0, (n + 1) * dim, dim, dtype=np.int32) if n else np.zeros(1, dtype=np.int32))
    columns[EMBEDDING] = pa.ListArray.from_arrays(offsets, pa.array(vectors.reshape(-1), type=pa.float32()))
    out = pa.table(columns)
    if cancelled():
        raise Cancelled("the index sync was canceled before it wrote anything")
    progress(message="writing the index table", force=True)
    written = svc.engine.write_table(
        spec.table,
        out.to_reader(max_chunksize=65_536),
        mode="overwrite",
        description=f"vector index {spec.name} of {spec.source_table} at version {detail.version}",
    )
    stats.table_version = written.version
    stats.written = True
    stats.hnsw = _sync_hnsw(
        svc,
        spec,
        row_ids=row_ids,
        vectors=vectors,
        changed_ids=np.asarray([row_ids[i] for i in to_embed if keys[i] in old_rows], dtype=np.int64),
        new_positions=np.asarray(to_embed, dtype=np.int64),
        deleted_ids=np.asarray([old_rows[k][0] for k in old_rows.keys() - set(keys)], dtype=np.int64),
        table_version=written.version,
        progress=progress,
    )
    return stats


def _vectors_for(
    svc: Services,
    spec: IndexSpec,
    src: pa.Table,
    texts: list[str] | None,
    positions: list[int],
    /,
    *,
    progress: Progress,
    cancelled: Callable[[], bool],
) -> Vectors:
    """Vectors for the rows at ``positions``: read from the source (self-managed) or embedded."""
    if not positions:
        return np.zeros((0, 0), dtype=np.float32)
    take = pa.array(positions, type=pa.int64())
    if spec.embedding_column is not None:
        column = src.column(spec.embedding_column).take(take)
        return as_matrix(column, what=f"the column {spec.embedding_column!r}")
    assert texts is not None
    embedder = load_embedder(svc.settings, spec.embedding_model)
    cache = embedding_cache(svc.settings)
    total = len(positions)
    parts = []
    for start in range(0, total, _EMBED_CHUNK):
        if cancelled():
            raise Cancelled("the index sync was canceled while embedding")
        chunk = [texts[i] for i in positions[start : start + _EMBED_CHUNK]]
        parts.append(embed_texts(embedder, chunk, batch_size=svc.settings.vectors.batch_size, cache=cache))
        progress(done=min(start + _EMBED_CHUNK, total), total=total, unit="texts embedded")
    return np.ascontiguousarray(np.vstack(parts), dtype=np.float32)


def _sync_hnsw(
    svc: Services,
    spec: IndexSpec,
    /,
    *,
    row_ids: np.ndarray,
    vectors: Vectors,
    changed_ids: np.ndarray,
    new_positions: np.ndarray,
    deleted_ids: np.ndarray,
    table_version: int,
    progress: Progress,
) -> bool:
    """Keep the HNSW graph in step with the table (only at or above the size threshold): update the
    graph of the previous version in place when there is one, else build it."""
    path = hnsw_path(svc, spec)
    n = len(row_ids)
    if n < svc.settings.vectors.hnsw_threshold or not vectors.shape[1]:
        path.unlink(missing_ok=True)
        return False
    from usearch.index import Index

    graph: Index | None = None
    if spec.hnsw_version is not None and spec.hnsw_version == spec.table_version and path.exists():
        graph = Index.restore(str(path))
        if graph is not None and graph.ndim != vectors.shape[1]:
            graph = None
    if graph is None:
        progress(message=f"building the HNSW graph of {n} vectors", force=True)
        graph = new_hnsw(vectors.shape[1])
        graph.add(row_ids.astype(np.uint64), vectors)
    else:
        gone = np.concatenate([deleted_ids, changed_ids]).astype(np.uint64)
        if len(gone):
            graph.remove(gone)
        if len(new_positions):
            graph.add(row_ids[new_positions].astype(np.uint64), vectors[new_positions])
    _save_hnsw(graph, path)
    logger.info("HNSW graph of index %s saved at table version %s", spec.id, table_version)
    return True
