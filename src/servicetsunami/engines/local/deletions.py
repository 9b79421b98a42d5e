"""Deletion vectors: a merge marks the rows it replaces as deleted instead of rewriting their files.

A Delta deletion vector (table feature ``deletionVectors``, PROTOCOL.md "Deletion Vectors") lists,
for one data file, the positions of the rows that no longer count. An upsert of keys spread over
the whole table then writes one small file of bitmaps and the new rows, where copy-on-write would
rewrite every file. delta-rs 1.6 honours deletion vectors in its scan, merge, delete and optimize
(which purges them), but writes none, exposes no descriptors and its pyarrow dataset refuses such
tables. So this module

- writes them: the bitmap format (a magic number and a portable 64-bit Roaring bitmap), the file
  format (version byte, then size, bitmap and CRC-32 per vector) and the descriptors (Z85 names);
- reads the live ``add`` actions of a version from the log itself (checkpoint plus JSON commits),
  since the merge must carry each file's statistics and old descriptor into its commit;
- hands the DuckDB read path the positions to skip (:func:`deleted_rows`) and the SQL that skips
  them (:func:`source_sql`): an anti-join on DuckDB's ``filename`` and ``file_row_number``;
- writes a commit of its own (put-if-absent by hard link), with the protocol upgrade the first time.
"""

from __future__ import annotations

import array
import hashlib
import json
import logging
import os
import struct
import time
import uuid
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable
from pyroaring import BitMap64

from servicetsunami.connectors.duckdb_support import lit
from servicetsunami.errors import Conflict

FEATURE = "deletionVectors"
ENABLE_PROPERTY = "delta.enableDeletionVectors"
MAGIC = 1681511377  # PROTOCOL.md, "Deletion Vector Format"
# Columns DuckDB adds as virtual columns; a table with a real column of either name keeps copy-on-write.
VIRTUAL_COLUMNS = ("filename", "file_row_number")
CHECKPOINT_INTERVAL = 100  # delta-rs's default: its own commits checkpoint at the same versions

logger = logging.getLogger(__name__)

_Z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
_Z85_INDEX = {c: i for i, c in enumerate(_Z85)}


def z85encode(data: bytes) -> str:
    if len(data) % 4:
        raise ValueError("Z85 encodes whole 4-byte groups")
    out: list[str] = []
    for i in range(0, len(data), 4):
        n = int.from_bytes(data[i : i + 4], "big")
        group = []
        for _ in range(5):
            n, r = divmod(n, 85)
            group.append(_Z85[r])
        out.extend(reversed(group))
    return "".join(out)


def z85decode(text: str) -> bytes:
    if len(text) % 5:
        raise ValueError("Z85 decodes whole 5-character groups")
    out = bytearray()
    for i in range(0, len(text), 5):
        n = 0
        for c in text[i : i + 5]:
            n = n * 85 + _Z85_INDEX[c]
        out += n.to_bytes(4, "big")
    return bytes(out)


def serialize(positions: BitMap64) -> bytes:
    return struct.pack("<I", MAGIC) + positions.serialize()


def deserialize(data: bytes) -> BitMap64:
    (magic,) = struct.unpack_from("<I", data)
    if magic != MAGIC:
        raise ValueError(f"not a deletion vector (magic number {magic})")
    return BitMap64.deserialize(data[4:])


def write_vectors(table_dir: Path, vectors: list[BitMap64]) -> list[dict[str, Any]]:
    """Write the vectors into one new DV file of the table; their descriptors, in order."""
    if not vectors:
        return []
    name = uuid.uuid4()
    buffer = bytearray(b"\x01")  # format version
    descriptors = []
    for positions in vectors:
        data = serialize(positions)
        descriptors.append(
            {
                "storageType": "u",
                "pathOrInlineDv": z85encode(name.bytes),
                "offset": len(buffer),
                "sizeInBytes": len(data),
                "cardinality": len(positions),
            }
        )
        buffer += struct.pack(">I", len(data)) + data + struct.pack(">I", zlib.crc32(data))
    target = table_dir / f"deletion_vector_{name}.bin"
    with open(target, "wb") as fh:
        fh.write(buffer)
        fh.flush()
        os.fsync(fh.fileno())
    return descriptors


def vector_file(table_dir: Path, descriptor: dict[str, Any]) -> Path:
    """The file a stored (not inline) deletion vector is in."""
    kind = descriptor["storageType"]
    if kind == "u":
        encoded = descriptor["pathOrInlineDv"]
        prefix, packed = encoded[:-20], encoded[-20:]
        return Path(table_dir) / str(prefix) / f"deletion_vector_{uuid.UUID(bytes=z85decode(packed))}.bin"
    if kind == "p":
        return Path(unquote(urlsplit(descriptor["pathOrInlineDv"]).path))
    raise ValueError(f"a deletion vector of storage type {kind!r} is not in a file")


def read_vector(table_dir: Path, descriptor: dict[str, Any]) -> BitMap64:
    """The positions a descriptor deletes (any of the three storage types)."""
    if descriptor["storageType"] == "i":
        return deserialize(z85decode(descriptor["pathOrInlineDv"])[: int(descriptor["sizeInBytes"])])
    file = vector_file(table_dir, descriptor)
    offset = int(descriptor.get("offset") or 1)
    with open(file, "rb") as fh:
        fh.seek(offset)
        (size,) = struct.unpack(">I", fh.read(4))
        data = fh.read(size)
        (checksum,) = struct.unpack(">I", fh.read(4))
    if zlib.crc32(data) != checksum:
        raise ValueError(f"deletion vector in {file.name} at {offset} fails its checksum")
    return deserialize(data)


def unique_id(descriptor: dict[str, Any] | None) -> str | None:
    if not descriptor:
        return None
    base = f"{descriptor['storageType']}{descriptor['pathOrInlineDv']}"
    return base if descriptor.get("offset") is None else f"{base}@{descriptor['offset']}"


# -- the log --------------------------------------------------------------------------------------


class UnreadableLog(Exception):
    """The log holds something this reader does not follow (a v2 checkpoint, a missing commit).

    Internal to the engine: every caller falls back (to delta-rs, to copy-on-write, to keeping
    files), so it never leaves the engine."""


def live_adds(table_dir: Path, version: int) -> dict[str, dict[str, Any]]:
    """The ``add`` actions of the files in ``version``, by path, as written in the log."""
    return _replay(table_dir, version)[0]


def _replay(table_dir: Path, version: int) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """The live ``add`` actions of ``version`` and the ``remove`` tombstones read on the way."""
    log = table_dir / "_delta_log"
    adds: dict[str, dict[str, Any]] = {}
    removes: list[dict[str, Any]] = []
    start = 0
    checkpoint = _checkpoint_at_or_before(log, version)
    if checkpoint is not None:
        start, parts = checkpoint
        for part in parts:
            columns = [c for c in ("add", "remove") if c in pq.read_schema(part).names]
            actions = pq.read_table(part, columns=columns)
            if "add" in columns:
                adds.update((a["path"], _from_checkpoint(a)) for a in actions.column("add").to_pylist() if a)
            if "remove" in columns:
                removes += [r for r in actions.column("remove").to_pylist() if r is not None]
        start += 1
    for v in range(start, version + 1):
        try:
            lines = (log / f"{v:020d}.json").read_text().splitlines()
        except FileNotFoundError as exc:
            raise UnreadableLog(f"commit {v} is missing from the log") from exc
        for line in lines:
            if not line.strip():
                continue
            action = json.loads(line)
            if "add" in action:
                adds[action["add"]["path"]] = action["add"]
            elif "remove" in action:
                removed = action["remove"]
                removes.append(removed)
                live = adds.get(removed["path"])
                if live is not None and unique_id(live.get("deletionVector")) == unique_id(
                    removed.get("deletionVector")
                ):
                    del adds[removed["path"]]
    return adds, removes


def unneeded_vector_files(table_dir: Path, *, retention_hours: float) -> list[Path]:
    """Deletion-vector files no version within the retention period reads: referenced neither by a
    current file nor by a file removed within the period, and not written within it (a merge may
    be about to commit one); and the temporary files of commits that never linked. delta-rs's
    vacuum leaves these files alone. None when the log cannot be replayed here: removing a vector
    some version still reads would corrupt that version."""
    cutoff_ms = (time.time() - retention_hours * 3600) * 1000
    try:
        adds, removes = _replay(table_dir, DeltaTable(str(table_dir)).version())
    except UnreadableLog:
        logger.warning("kept the deletion vector files of %s: its log cannot be replayed here", table_dir)
        return []
    needed = [a.get("deletionVector") for a in adds.values()]
    needed += [r.get("deletionVector") for r in removes if (r.get("deletionTimestamp") or 0) >= cutoff_ms]
    keep = {vector_file(table_dir, d) for d in needed if d and d["storageType"] != "i"}
    files = [*table_dir.glob("deletion_vector_*.bin"), *table_dir.glob("*/deletion_vector_*.bin")]
    files += (table_dir / "_delta_log").glob(".*.json.tmp")  # commits that died before they were linked
    return [f for f in files if f not in keep and f.stat().st_mtime * 1000 < cutoff_ms]


def _checkpoint_at_or_before(log: Path, version: int) -> tuple[int, list[Path]] | None:
    """The newest complete classic or multi-part checkpoint at or before ``version``."""
    found: dict[int, dict[tuple[int, int], Path]] = {}
    for entry in os.scandir(log):
        name = entry.name
        if ".checkpoint." not in name or not name.endswith(".parquet") or not name[:20].isdigit():
            continue
        rest = name[len("00000000000000000000.checkpoint.") : -len(".parquet")].split(".")
        if rest == [""]:
            part = (1, 1)
        elif len(rest) == 2 and all(r.isdigit() for r in rest):
            part = (int(rest[0]), int(rest[1]))
        else:
            continue  # a v2 (UUID-named) checkpoint: older ones or the JSON commits still serve
        found.setdefault(int(name[:20]), {})[part] = Path(entry.path)
    for v in sorted((v for v in found if v <= version), reverse=True):
        parts = found[v]
        total = next(iter(parts))[1]
        if sorted(parts) == [(i, total) for i in range(1, total + 1)]:
            return v, [parts[k] for k in sorted(parts)]
    return None


def _from_checkpoint(add: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's ``add`` struct as the JSON action (maps come back as lists of pairs)."""
    out = {k: v for k, v in add.items() if v is not None and k != "stats_parsed"}
    for key in ("partitionValues", "tags"):
        if isinstance(out.get(key), list):
            out[key] = dict(out[key])
    out.setdefault("partitionValues", {})
    return out


# -- reading --------------------------------------------------------------------------------------


def in_use(dt: DeltaTable) -> bool:
    """Whether the table supports deletion vectors (then its readers must honour them)."""
    return FEATURE in (dt.protocol().reader_features or [])


@dataclass(frozen=True)
class DeletedRows:
    """The rows a snapshot's deletion vectors remove, for DuckDB: ``filename`` (as
    ``DeltaTable.file_uris`` names the file) and ``pos`` (the row's position in the file)."""

    table: pa.Table
    files: frozenset[str]
    name: str  # a view name derived from the contents: same name, same rows


def deleted_rows(dt: DeltaTable) -> DeletedRows | None:
    """The rows the snapshot's deletion vectors remove; None when there are none. Read from the
    vectors the log names (a few milliseconds), else from delta-rs (50-140 ms on 5M rows: it
    expands every vector into a mask of the whole file)."""
    if not in_use(dt):
        return None
    table_dir = Path(_local_path(dt.table_uri))
    try:
        adds = live_adds(table_dir, dt.version())
        marked = sorted(
            ((_file_of(table_dir, p), a["deletionVector"]) for p, a in adds.items() if a.get("deletionVector")),
            key=lambda pair: pair[0],
        )
        vectors = [read_vector(table_dir, descriptor) for _, descriptor in marked]
    except (UnreadableLog, OSError, ValueError):
        return _deleted_rows_from_delta_rs(dt)
    if not marked:
        return None
    names = [name for name, _ in marked]
    table = rows_table(dict(zip(names, vectors, strict=True)))
    # Vector files never change: the files and their vectors' ids name these rows exactly.
    identity = "\0".join(f"{name}\0{unique_id(descriptor)}" for name, descriptor in marked)
    return DeletedRows(table, frozenset(names), f"__deleted_{hashlib.sha256(identity.encode()).hexdigest()[:32]}")


def rows_table(vectors: dict[str, BitMap64]) -> pa.Table:
    """Positions by file as the (``filename``, ``pos``) table :func:`source_sql` anti-joins."""
    which = array.array("q")
    for i, positions in enumerate(vectors.values()):
        which += array.array("q", [i]) * len(positions)
    return pa.table(
        {
            "filename": pc.take(pa.array(list(vectors), pa.string()), pa.array(which, pa.int64())),
            "pos": pa.concat_arrays(
                [_int64(positions.to_array()) for positions in vectors.values()] or [pa.array([], pa.int64())]
            ),
        }
    )


def _int64(values: array.array[int]) -> pa.Array:
    """An ``array('Q')`` of positions as an Arrow int64 array, sharing its buffer."""
    return pa.Array.from_buffers(pa.uint64(), len(values), [None, pa.py_buffer(values)]).cast(pa.int64())


def _file_of(table_dir: Path, path: str) -> str:
    """A log path as ``DeltaTable.file_uris`` names the file."""
    if "://" in path:
        return _local_path(path)
    return str(table_dir / unquote(path))


def _deleted_rows_from_delta_rs(dt: DeltaTable) -> DeletedRows | None:
    vectors = pa.table(dt.deletion_vectors())
    if vectors.num_rows == 0:
        return None
    keep = vectors.column("selection_vector").combine_chunks()
    deleted = pc.invert(pc.list_flatten(keep))
    file = pc.filter(pc.list_parent_indices(keep), deleted)  # which file each deleted row is in
    index = pc.indices_nonzero(deleted)  # its position among all files' rows
    start = pc.subtract(pc.take(keep.offsets, file), keep.offsets[0])
    names = pa.array([_local_path(p) for p in vectors.column("filepath").to_pylist()], pa.string())
    table = pa.table(
        {"filename": pc.take(names, file), "pos": pc.subtract(index.cast(pa.int64()), start.cast(pa.int64()))}
    ).sort_by([("filename", "ascending"), ("pos", "ascending")])
    digest = hashlib.sha256()  # no descriptors here: the rows themselves name the view
    for column in ("filename", "pos"):
        for chunk in table.column(column).chunks:
            digest.update(b"".join(bytes(b) for b in chunk.buffers() if b is not None))
    return DeletedRows(table, frozenset(names.to_pylist()), f"__deleted_{digest.hexdigest()[:32]}")


def _local_path(uri: str) -> str:
    return unquote(urlsplit(uri).path) if uri.startswith("file:") else uri


def source_sql(files: list[str], options: str, deleted: DeletedRows | None = None) -> str:
    """A DuckDB FROM item over the files; those ``deleted`` names are read without its rows (an
    anti-join on ``filename`` and ``file_row_number``; the caller registers ``deleted.table`` as
    ``deleted.name``)."""
    marked = [f for f in files if deleted is not None and f in deleted.files]
    if deleted is None or not marked:
        return f"read_parquet([{_quoted(files)}]{options})"
    clean = [f for f in files if f not in deleted.files]
    parts = [f"SELECT * FROM read_parquet([{_quoted(clean)}]{options})"] if clean else []
    parts.append(
        f"SELECT d.* FROM read_parquet([{_quoted(marked)}]{options}) d "
        f'ANTI JOIN "{deleted.name}" x ON d.filename = x.filename AND d.file_row_number = x.pos'
    )
    return "(" + " UNION ALL BY NAME ".join(parts) + ")"


def _quoted(files: Iterable[str]) -> str:
    return ", ".join(lit(f) for f in files)


def scan(dt: DeltaTable) -> pa.RecordBatchReader:
    """Every live row of the snapshot, as the table's Arrow schema."""
    schema = pa.schema(dt.schema().to_arrow())
    if not in_use(dt):
        return dt.to_pyarrow_dataset().scanner().to_reader()
    source = pa.RecordBatchReader.from_stream(dt.scan())
    return pa.RecordBatchReader.from_batches(schema, (b.select(schema.names).cast(schema) for b in source))


# -- committing -----------------------------------------------------------------------------------


# The table features whose writer rules a commit of ours keeps: nothing beyond adds, removes and vectors.
_FEATURES_WE_WRITE = {"appendOnly", "invariants", "deletionVectors", "timestampNtz"}


def writable(dt: DeltaTable) -> bool:
    """Whether :func:`commit` may write to this table: no feature with writer rules it does not
    follow (change data feed, column mapping, row tracking, ...), not append-only, and deletion
    vectors not turned off by the table's own property."""
    protocol = dt.protocol()
    if protocol.min_reader_version == 2 or 2 < protocol.min_writer_version < 7:
        return False
    features = set(protocol.writer_features or []) | set(protocol.reader_features or [])
    config = {k: (v or "").lower() for k, v in dt.metadata().configuration.items()}
    return (
        features <= _FEATURES_WE_WRITE
        and config.get("delta.appendOnly") != "true"
        and config.get("delta.enableChangeDataFeed") != "true"
        and config.get(ENABLE_PROPERTY) != "false"
    )


def upgrade_actions(dt: DeltaTable) -> list[dict[str, Any]]:
    """The protocol and metadata actions that turn deletion vectors on; none once they are. Only
    for tables :func:`writable` accepts (so no legacy version other than reader 1, writer 1-2)."""
    protocol = dt.protocol()
    meta = dt.metadata()
    actions: list[dict[str, Any]] = []
    if FEATURE not in (protocol.reader_features or []):
        readers = set(protocol.reader_features or [])
        writers = set(protocol.writer_features or [])
        if protocol.min_writer_version == 2:  # what legacy writer version 2 implies (PROTOCOL.md)
            writers |= {"appendOnly", "invariants"}
        actions.append(
            {
                "protocol": {
                    "minReaderVersion": 3,
                    "minWriterVersion": 7,
                    "readerFeatures": sorted(readers | {FEATURE}),
                    "writerFeatures": sorted(writers | {FEATURE}),
                }
            }
        )
    if meta.configuration.get(ENABLE_PROPERTY) != "true":
        actions.append(
            {
                "metaData": {
                    "id": meta.id,
                    "name": meta.name,
                    "description": meta.description,
                    "format": {"provider": "parquet", "options": {}},
                    "schemaString": dt.schema().to_json(),
                    "partitionColumns": list(meta.partition_columns),
                    "createdTime": meta.created_time,
                    "configuration": {**meta.configuration, ENABLE_PROPERTY: "true"},
                }
            }
        )
    return actions


def commit(
    table_dir: Path,
    read_version: int,
    actions: list[dict[str, Any]],
    *,
    operation: str,
    parameters: dict[str, Any],
    metrics: dict[str, Any],
    props: CommitProperties,
) -> int:
    """Write ``actions`` as commit ``read_version + 1``; fails, writing nothing, if it exists."""
    now = int(time.time() * 1000)
    info: dict[str, Any] = {
        "timestamp": now,
        "operation": operation,
        "operationParameters": parameters,
        "readVersion": read_version,
        "isBlindAppend": False,
        "engineInfo": "servicetsunami",
        "operationMetrics": metrics,
        **(props.custom_metadata or {}),
    }
    txns = [
        {"txn": {"appId": t.app_id, "version": t.version, "lastUpdated": t.last_updated or now}}
        for t in props.app_transactions or []
    ]
    lines = [json.dumps({"commitInfo": info}), *(json.dumps(a) for a in [*txns, *actions])]
    log = table_dir / "_delta_log"
    version = read_version + 1
    tmp = log / f".{uuid.uuid4().hex}.json.tmp"
    with open(tmp, "w") as fh:
        fh.write("\n".join(lines) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(tmp, log / f"{version:020d}.json")
    except FileExistsError as exc:
        raise Conflict(f"another writer committed version {version} of the table first; run it again") from exc
    finally:
        tmp.unlink(missing_ok=True)
    if version % CHECKPOINT_INTERVAL == 0:
        DeltaTable(str(table_dir), version=version).create_checkpoint()
    return version
