"""File ingestion: a file lands in the tenant's ``landing`` volume and its rows in ``bronze``.

One upload is one Delta commit. The original file is kept (``/Volumes/<catalog>/bronze/landing/
uploads/<date>/<sync_id>/<file>``) so bronze can be rebuilt from it. If anything fails, the landed
file and any table this upload would have created are removed, and an existing table keeps the
version it had.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import io
import logging
import os
import pathlib
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, BinaryIO, Literal, cast

import pyarrow.dataset as pads

from servicetsunami.connectors.files.reader import (
    SAMPLED_FORMATS,
    FileOptions,
    clean_error,
    detect_format,
    with_comments,
)
from servicetsunami.engines.base import VolumeFile, WriteMode, WriteResult
from servicetsunami.errors import BadFile, InvalidInput, LimitExceeded
from servicetsunami.services.governance import pii
from servicetsunami.services.ingestion import local_files, parsing
from servicetsunami.services.models import UploadResult
from servicetsunami.store.repositories import audit as audit_repo
from servicetsunami.store.repositories import datasets as datasets_repo
from servicetsunami.tenancy import LANDING_VOLUME, Principal, Scope, TableRef, check_identifier

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

logger = logging.getLogger(__name__)

Mode = Literal["create", "append", "overwrite"]
MODES: tuple[Mode, ...] = ("create", "append", "overwrite")
_FILE_NAME_RE = re.compile(r"^[^/\\\x00-\x1f]{1,255}$")

__all__ = ["FileOptions", "decode_base64", "upload_file"]


def decode_base64(text: str, /) -> bytes:
    """Decode ``file_content`` as sent by an MCP client; a clear error when it is not base64."""
    cleaned = re.sub(r"\s+", "", text or "")
    if "," in cleaned[:100] and cleaned.startswith("data:"):  # a data URL
        cleaned = cleaned.split(",", 1)[1]
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput("file_content is not valid base64; encode the file's bytes with base64") from exc


def upload_file(
    svc: Services,
    principal: Principal,
    *,
    file_name: str,
    dataset_name: str,
    content: bytes | None = None,
    path: pathlib.Path | None = None,
    mode: str = "create",
    options: FileOptions | None = None,
) -> UploadResult:
    """Ingest one file into ``bronze.<dataset_name>``; see the module docstring."""
    principal.require(Scope.WRITE)
    started = time.perf_counter()
    options = options or FileOptions()
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if not isinstance(file_name, str) or not _FILE_NAME_RE.fullmatch(file_name) or file_name in (".", ".."):
        raise InvalidInput("file_name must be a plain file name like 'sales.csv' (no folders, at most 255 characters)")
    check_identifier(dataset_name, what="dataset_name")
    fmt = detect_format(file_name, options)
    if (content is None) == (path is None):
        raise InvalidInput("send the file either as file_content (base64) or as a local path, not both")

    ref = TableRef(principal.catalog, "bronze", dataset_name)
    svc.engine.ensure_catalog(principal.catalog)
    sync_id = uuid.uuid4().hex
    landing_rel = f"uploads/{datetime.now(UTC):%Y-%m-%d}/{sync_id}/{file_name}"
    limit = svc.settings.ingest.max_upload_bytes
    if path is not None and content is None and svc.settings.multi_tenant:
        source: BinaryIO | pathlib.Path = local_files.open_allowed(svc, principal, path, limit)
    else:
        source = _open_source(content, path, limit)
    landing = _Landing(svc, principal.catalog, landing_rel, source)
    try:
        if isinstance(source, pathlib.Path):
            # Copy to the landing volume while reading the user's file: both hit the same cached
            # pages, and the copy no longer adds to the upload's time. It must finish before commit.
            result, columns, sheets = _ingest(svc, ref, source, file_name, options, mode, sync_id, landing.wait)
        else:
            landing.wait()
            with _local_copy(svc, principal.catalog, landing_rel, file_name) as local:
                result, columns, sheets = _ingest(svc, ref, local, file_name, options, mode, sync_id, landing.wait)
        landed = landing.wait()
        detail = svc.engine.describe(ref, version=result.version)
    except BaseException:
        landing.abandon()
        raise

    with svc.store.session(write_lock=True) as session:  # read, then write: SQLite's lock from the start
        dataset = datasets_repo.upsert_dataset(
            session,
            tenant_id=principal.tenant_id,
            name=dataset_name,
            table_schema="bronze",
            table_name=dataset_name,
            source_name=file_name,
            landing_path=landed.path,
            format=fmt,
            rows=detail.rows or 0,
            table_version=result.version,
            size_bytes=detail.size_bytes,
            meta={
                "original_columns": dict(columns),
                "options": {k: v for k, v in dataclasses.asdict(options).items() if v is not None},
                "sheets": sheets,
                "last_sync_id": sync_id,
                "last_mode": mode,
                "last_rows": result.rows,
            },
        )
        audit_repo.record_audit(
            session,
            tenant_id=principal.tenant_id,
            subject=principal.subject,
            action="upload_file",
            target=str(ref),
            meta={"rows": result.rows, "mode": mode, "version": result.version, "file": file_name},
        )
        dataset_id = dataset.id
    logger.info("ingested %s rows into %s (version %s)", result.rows, ref, result.version)
    pii.flag_written(svc, principal, ref, columns=[c.name for c in detail.columns], detail=detail)
    return UploadResult(
        dataset_id=dataset_id,
        table=f"{ref.schema}.{ref.name}",
        mode=mode,
        rows=result.rows,
        columns=detail.columns,
        version=result.version,
        size_bytes=detail.size_bytes,
        landing_path=landed.path,
        sync_id=sync_id,
        elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
        sheets=sheets or None,
    )


def _ingest(
    svc: Services,
    ref: TableRef,
    local: pathlib.Path,
    file_name: str,
    options: FileOptions,
    mode: str,
    sync_id: str,
    before_commit: Callable[[], object],
) -> tuple[WriteResult, list[tuple[str, str]], list[str]]:
    extra = {
        "_ingested_at": datetime.now(UTC),
        "_source": f"file:{file_name}",
        "_sync_id": sync_id,
    }
    parsing.check_file(local, file_name, options, svc.settings.ingest)
    full_sample = False
    while True:
        try:
            return _ingest_once(svc, ref, local, file_name, options, mode, sync_id, extra, full_sample, before_commit)
        except BadFile as exc:
            if not full_sample and _is_late_type_error(exc) and detect_format(file_name, options) in SAMPLED_FORMATS:
                logger.info("type guess failed late in %s; re-reading with every row sampled", file_name)
                full_sample = True
                continue
            if exc.message.startswith(f"{file_name}: "):
                raise
            raise BadFile(clean_error(exc, file_name, path=local)) from exc


def _ingest_once(
    svc: Services,
    ref: TableRef,
    local: pathlib.Path,
    file_name: str,
    options: FileOptions,
    mode: str,
    sync_id: str,
    extra: dict[str, object],
    full_sample: bool,
    before_commit: Callable[[], object],
) -> tuple[WriteResult, list[tuple[str, str]], list[str]]:
    engine = svc.engine
    write_mode = cast(WriteMode, mode)
    description = f"Uploaded from {file_name}"
    commit_info = {"tsunami.sync_id": sync_id, "tsunami.source": f"file:{file_name}"}
    ingest = svc.settings.ingest
    workdir = parsing.workdir(svc.settings)

    def parse(output_dir: pathlib.Path) -> parsing.Parsed:
        return parsing.parse_to_parquet(
            local,
            file_name=file_name,
            options=options,
            output_dir=output_dir,
            extra=extra,
            full_sample=full_sample,
            settings=ingest,
            workdir=workdir,
        )

    if not engine.capabilities.staged_parquet:
        # The child writes Parquet to a private folder; its rows stream from there to the writer.
        out = workdir / f"out-{sync_id}"
        try:
            parsed = parse(out)
            stream = with_comments(
                pads.dataset(str(out), format="parquet").scanner(batch_size=ingest.batch_rows).to_reader(),
                dict(parsed.columns),
            )
            before_commit()
            result = engine.write_table(ref, stream, mode=write_mode, description=description, commit_info=commit_info)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        return result, parsed.columns, parsed.sheets
    # DuckDB writes the Parquet files in parallel and the engine commits them: about twice as fast
    # as streaming Arrow into the Delta writer (benchmarks/upload.py).
    stage = engine.new_stage(ref)
    try:
        parsed = parse(stage)
        before_commit()
    except BaseException:
        engine.discard_stage(ref, stage)
        raise
    result = engine.commit_stage(
        ref,
        stage,
        mode=write_mode,
        comments=dict(parsed.columns),
        description=description,
        commit_info=commit_info,
    )
    return result, parsed.columns, parsed.sheets


def _is_late_type_error(exc: BadFile) -> bool:
    text = exc.message
    return "Could not convert" in text or "Conversion Error" in text or "could not convert" in text


def _open_source(content: bytes | None, path: pathlib.Path | None, limit: int) -> BinaryIO | pathlib.Path:
    """The upload as a stream (bytes sent by a client) or a local path (copied by the kernel)."""
    if content is not None:
        if len(content) > limit:
            raise LimitExceeded(f"the file is {len(content)} bytes; the limit is {limit} bytes")
        return io.BytesIO(content)
    assert path is not None
    p = pathlib.Path(path).expanduser().absolute()
    if not p.is_file():
        raise InvalidInput(f"{p} is not a readable file")
    size = p.stat().st_size
    if size > limit:
        raise LimitExceeded(f"{p.name} is {size} bytes; the limit is {limit} bytes")
    if not os.access(p, os.R_OK):
        raise InvalidInput(f"cannot read {p}: permission denied")
    return p


class _Landing:
    """Keeps the original file in the landing volume: copied in a thread for a local path (so it
    overlaps the ingestion), written at once for bytes. ``wait`` returns the stored file or raises
    the copy's error; ``abandon`` removes whatever was stored."""

    def __init__(self, svc: Services, catalog: str, rel: str, source: BinaryIO | pathlib.Path) -> None:
        self._svc, self._catalog, self._rel = svc, catalog, rel
        self._result: VolumeFile | None = None
        self._error: BaseException | None = None
        if isinstance(source, pathlib.Path):
            self._thread: threading.Thread | None = threading.Thread(
                target=self._store, args=(source,), name="landing-copy", daemon=True
            )
            self._thread.start()
        else:
            self._thread = None
            try:
                self._store(source)
            finally:
                source.close()

    def _store(self, source: BinaryIO | pathlib.Path) -> None:
        try:
            self._result = self._svc.engine.put_file(self._catalog, "bronze", LANDING_VOLUME, self._rel, source)
        except BaseException as exc:  # handed to the waiting thread
            self._error = exc

    def wait(self) -> VolumeFile:
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def abandon(self) -> None:
        if self._thread is not None:
            self._thread.join()
        self._svc.engine.delete_file(self._catalog, "bronze", LANDING_VOLUME, self._rel)


class _local_copy:  # used like a function: `with _local_copy(...) as path`
    """The landed file as a local path: the volume file itself on the local engine, a temporary
    copy when the engine keeps volumes elsewhere."""

    def __init__(self, svc: Services, catalog: str, rel: str, file_name: str) -> None:
        self._svc, self._catalog, self._rel, self._name = svc, catalog, rel, file_name
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> pathlib.Path:
        local = self._svc.engine.local_path(self._catalog, "bronze", LANDING_VOLUME, self._rel)
        if local is not None:
            return pathlib.Path(local)
        self._tmp = tempfile.TemporaryDirectory(prefix="tsunami-upload-")
        target = pathlib.Path(self._tmp.name) / self._name
        with (
            self._svc.engine.open_file(self._catalog, "bronze", LANDING_VOLUME, self._rel) as src,
            open(target, "wb") as out,
        ):
            shutil.copyfileobj(src, out, 1024 * 1024)
        return target

    def __exit__(self, *exc: object) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
