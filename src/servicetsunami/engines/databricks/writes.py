"""The write path: an Arrow stream becomes Parquet files in the tenant's landing volume (Files API, one
request per file, never row by row), then one SQL statement loads them.

- append: ``COPY INTO``, which loads each file once: a retried statement, or a retried write that
  produces the same file names, adds nothing twice;
- overwrite (and the first write of a table): ``CREATE [OR REPLACE] TABLE ... AS SELECT * FROM
  read_files(...)``;
- merge: the files become a staged table, then ``MERGE WITH SCHEMA EVOLUTION INTO`` upserts from it.

Idempotency tokens name the files (``<app_id>-<sequence>``) and are recorded, after the commit, in a
small ledger file next to them (``_tsunami/commits``). A crash between the commit and the ledger is
harmless: the retried write uploads the same file names and ``COPY INTO`` skips them; overwrite and
merge produce the same table when applied again.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from servicetsunami.engines.base import Idempotency
from servicetsunami.engines.databricks.workspace import Workspace
from servicetsunami.errors import BadFile, EngineError, InvalidInput, TsunamiError
from servicetsunami.tenancy import LANDING_VOLUME, TableRef

INTERNAL = "_tsunami"  # folder of the landing volume the engine keeps for itself
STAGE_TABLE_PREFIX = "tsunami_stage_"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def qualified(ref: TableRef) -> str:
    return ".".join(quote(p) for p in (ref.catalog, ref.schema, ref.name))


def literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def volume_root(catalog: str) -> str:
    return f"/Volumes/{catalog}/bronze/{LANDING_VOLUME}"


def token_for(idempotency: Idempotency | None) -> str:
    if idempotency is None:
        return uuid.uuid4().hex
    return f"{_UNSAFE.sub('_', idempotency.app_id)}-{idempotency.sequence:012d}"


@dataclass(frozen=True, slots=True)
class Staged:
    """Parquet files uploaded for one write."""

    directory: str  # /Volumes/<catalog>/bronze/landing/_tsunami/stage/<schema>.<table>/<token>
    names: list[str]
    rows: int
    schema: pa.Schema


def stage_stream(ws: Workspace, ref: TableRef, data: pa.RecordBatchReader, /, *, token: str, file_rows: int) -> Staged:
    """Write the stream to Parquet files of at most ``file_rows`` rows and upload each. A stream that
    fails part way leaves nothing behind (uploaded files are removed) and no SQL is run."""
    directory = f"{volume_root(ref.catalog)}/{INTERNAL}/stage/{ref.schema}.{ref.name}/{token}"
    names: list[str] = []
    rows = 0
    try:
        with tempfile.TemporaryDirectory(prefix="tsunami-stage-") as tmp:
            for index, (path, count) in enumerate(_parquet_parts(data, Path(tmp), file_rows)):
                name = f"part-{index:05d}.parquet"
                with path.open("rb") as fh, ws.translated(f"uploading {name} for {ref}"):
                    ws.client.files.upload(f"{directory}/{name}", fh, overwrite=True)
                path.unlink()
                names.append(name)
                rows += count
    except BaseException:
        remove_files(ws, directory, names)
        raise
    return Staged(directory, names, rows, data.schema)


def stage_files(ws: Workspace, ref: TableRef, files: list[Path], schema: pa.Schema, /, *, token: str) -> Staged:
    """Upload Parquet files another writer produced (a stage folder) for one write."""
    directory = f"{volume_root(ref.catalog)}/{INTERNAL}/stage/{ref.schema}.{ref.name}/{token}"
    names: list[str] = []
    rows = 0
    try:
        for index, path in enumerate(files):
            name = f"part-{index:05d}.parquet"
            with path.open("rb") as fh, ws.translated(f"uploading {name} for {ref}"):
                ws.client.files.upload(f"{directory}/{name}", fh, overwrite=True)
            names.append(name)
            rows += pq.read_metadata(path).num_rows
    except BaseException:
        remove_files(ws, directory, names)
        raise
    return Staged(directory, names, rows, schema)


def _parquet_parts(data: pa.RecordBatchReader, folder: Path, file_rows: int) -> Iterator[tuple[Path, int]]:
    writer: pq.ParquetWriter | None = None
    path = folder / "part.parquet"
    count = 0
    index = 0
    try:
        for batch in _batches(data):
            if batch.num_rows == 0:
                continue
            if writer is None:
                path = folder / f"part-{index}.parquet"
                writer = pq.ParquetWriter(path, data.schema, compression="zstd")
            writer.write_batch(batch)
            count += batch.num_rows
            if count >= file_rows:
                writer.close()
                writer = None
                yield path, count
                count, index = 0, index + 1
        if writer is not None:
            writer.close()
            writer = None
            yield path, count
        elif index == 0:  # an empty stream still creates (or replaces) a table with its columns
            pq.write_table(data.schema.empty_table(), folder / "part-0.parquet")
            yield folder / "part-0.parquet", 0
    finally:
        if writer is not None:
            writer.close()


def _batches(data: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
    try:
        yield from data
    except TsunamiError:
        raise
    except pa.ArrowInvalid as exc:
        raise BadFile(f"the rows could not be read: {exc}") from exc
    except Exception as exc:
        raise EngineError(f"the rows to write could not be read: {exc}", transient=isinstance(exc, OSError)) from exc


def remove_files(ws: Workspace, directory: str, names: list[str]) -> None:
    """Best effort: a leftover staged file is only disk; it never becomes rows."""
    for name in names:
        try:
            ws.client.files.delete(f"{directory}/{name}")
        except Exception:  # leftovers are harmless, and the write's own outcome is what matters
            continue
    try:
        ws.client.files.delete_directory(directory)
    except Exception:  # not empty or already gone
        return


def copy_into(ref: TableRef, staged: Staged) -> str:
    files = ", ".join(literal(n) for n in staged.names)
    return (
        f"COPY INTO {qualified(ref)} FROM {literal(staged.directory)} FILEFORMAT = PARQUET FILES = ({files}) "
        "FORMAT_OPTIONS ('mergeSchema' = 'true') COPY_OPTIONS ('mergeSchema' = 'true')"
    )


def create_as_select(ref: TableRef, staged: Staged, *, replace: bool, description: str | None) -> str:
    head = "CREATE OR REPLACE TABLE" if replace else "CREATE TABLE IF NOT EXISTS"
    comment = f" COMMENT {literal(description)}" if description else ""
    return (
        f"{head} {qualified(ref)}{comment} AS SELECT * FROM "
        f"read_files({literal(staged.directory)}, format => 'parquet', mergeSchema => true)"
    )


def merge_into(ref: TableRef, stage: TableRef, keys: list[str], columns: list[str]) -> str:
    missing = [k for k in keys if k not in columns]
    if missing:
        raise InvalidInput(f"merge key(s) {', '.join(missing)} are not columns of the rows to write")
    on = " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in keys)
    return (
        f"MERGE WITH SCHEMA EVOLUTION INTO {qualified(ref)} AS t USING {qualified(stage)} AS s ON {on} "
        "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
    )


def rewrite_widened(ref: TableRef, current: pa.Schema, widen: dict[str, str]) -> str:
    """One commit that rewrites the table with the widened column types (same as the local engine)."""
    select = ", ".join(
        f"CAST({quote(f.name)} AS {widen[f.name]}) AS {quote(f.name)}" if f.name in widen else quote(f.name)
        for f in current
    )
    return f"CREATE OR REPLACE TABLE {qualified(ref)} AS SELECT {select} FROM {qualified(ref)}"


def stage_table(ref: TableRef, token: str) -> TableRef:
    return TableRef(ref.catalog, ref.schema, f"{STAGE_TABLE_PREFIX}{_UNSAFE.sub('_', token).replace('-', '_').lower()}")


# -- the idempotency ledger -------------------------------------------------------------------


def _ledger_dir(ref: TableRef) -> str:
    return f"{volume_root(ref.catalog)}/{INTERNAL}/commits/{ref.schema}.{ref.name}"


def read_ledger(ws: Workspace, ref: TableRef, app_id: str) -> dict[str, Any] | None:
    from databricks.sdk.errors import NotFound as SdkNotFound

    path = f"{_ledger_dir(ref)}/{_UNSAFE.sub('_', app_id)}.json"
    try:
        with ws.translated(f"reading the commit ledger of {ref}"):
            try:
                body = ws.client.files.download(path).contents
            except SdkNotFound:
                return None
            assert body is not None
            with body:
                record: dict[str, Any] = json.loads(body.read())
    except TsunamiError:
        raise
    return record


def write_ledger(ws: Workspace, ref: TableRef, idempotency: Idempotency, commit_info: dict[str, str] | None) -> None:
    record = {"app_id": idempotency.app_id, "sequence": idempotency.sequence, "commit_info": commit_info or {}}
    path = f"{_ledger_dir(ref)}/{_UNSAFE.sub('_', idempotency.app_id)}.json"
    body = io.BytesIO(json.dumps(record).encode())
    ws.call(lambda: ws.client.files.upload(path, body, overwrite=True), action=f"recording the commit of {ref}")


def drop_ledger(ws: Workspace, ref: TableRef) -> None:
    directory = _ledger_dir(ref)
    try:
        entries = list(ws.client.files.list_directory_contents(directory))
    except Exception:  # no ledger: nothing to drop
        return
    remove_files(ws, directory, [str(e.name) for e in entries if e.name])
