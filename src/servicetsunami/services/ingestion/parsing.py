"""Reading an uploaded file where a crash or a runaway costs one request, never a worker.

The file's structure is checked first (:mod:`servicetsunami.connectors.files.limits`); then DuckDB
reads it in a child process (:mod:`servicetsunami.connectors.files.child`) started through the
runs' killable-process helper (:func:`~servicetsunami.runs.local.processes.run_process`) with an
address-space limit (``ingest.parse_memory_bytes``; DuckDB inside gets all but 1 GiB of it, at
least half, and spills), a CPU-time limit (``ingest.parse_cpu_seconds``) and a wall clock
(``ingest.parse_timeout_seconds``), after which its process group is killed. The child dies with
the thread that waits for it, so a worker that exits leaves no parser behind.

The child writes Parquet files into the folder it is given (an engine's stage, or a temporary
folder the caller streams from); the caller commits them. How it ended becomes one of the service's
errors: the child's own error as it raised it; a kill at the wall clock or CPU limit, or memory
exhausted, as :class:`~servicetsunami.errors.FileLimitExceeded` naming the setting; any other death
(DuckDB's ``read_json`` dies of SIGSEGV on some inputs) as :class:`~servicetsunami.errors.BadFile`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pathlib
import shutil
import signal
import sys
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from servicetsunami.connectors.files import child
from servicetsunami.connectors.files.limits import StructureLimits, check_structure
from servicetsunami.connectors.files.reader import FileOptions, detect_format
from servicetsunami.errors import BadFile, FileLimitExceeded, InvalidInput, SourceError
from servicetsunami.runs.base import ClaimedRun
from servicetsunami.runs.local.processes import Limits, run_process
from servicetsunami.settings import IngestSettings, Settings

logger = logging.getLogger(__name__)

_ERRORS: dict[str, type[BadFile] | type[FileLimitExceeded] | type[InvalidInput]] = {
    "BadFile": BadFile,
    "FileLimitExceeded": FileLimitExceeded,
    "InvalidInput": InvalidInput,
}
_ENV_KEEP = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "PYTHONPATH")


@dataclass(frozen=True, slots=True)
class Parsed:
    columns: list[tuple[str, str]]  # (column, original name)
    sheets: list[str]


def workdir(settings: Settings) -> pathlib.Path:
    """Where the reader processes keep their request, answer and logs (swept at start-up)."""
    return settings.resolved_home / "tmp" / "parse"


def duckdb_memory_limit(address_space: int) -> int:
    """DuckDB's share of the reader's address space: all but 1 GiB (Python, Arrow, thread stacks),
    at least half. (At half of the default 4 GiB its CSV to Parquet copy ran 20% slower.)"""
    return max(address_space // 2, address_space - 1024**3)


def check_file(path: pathlib.Path, file_name: str, options: FileOptions, settings: IngestSettings) -> None:
    """The structural limits of the file (before any parser sees it)."""
    encoding = {"utf16": "utf-16", "utf-16": "utf-16", "latin1": "latin-1", "latin-1": "latin-1"}.get(
        (options.encoding or "utf-8").lower(), "utf-8"
    )
    check_structure(
        path, detect_format(file_name, options), file_name, StructureLimits.from_settings(settings), encoding=encoding
    )


def parse_to_parquet(
    path: pathlib.Path,
    *,
    file_name: str,
    options: FileOptions,
    output_dir: pathlib.Path,
    extra: dict[str, Any],
    full_sample: bool,
    settings: IngestSettings,
    workdir: pathlib.Path,
) -> Parsed:
    """Write the file's rows as Parquet files into ``output_dir`` in a limited child process."""
    folder = workdir / f"parse-{uuid.uuid4().hex}"
    folder.mkdir(parents=True)
    try:
        request = {
            "path": str(path),
            "file_name": file_name,
            "options": {k: v for k, v in dataclasses.asdict(options).items() if v is not None},
            "output_dir": str(output_dir),
            "extra": {k: v.isoformat() if isinstance(v, datetime) else v for k, v in extra.items()},
            "datetime_keys": [k for k, v in extra.items() if isinstance(v, datetime)],
            "full_sample": full_sample,
            "batch_rows": settings.batch_rows,
            "memory_limit_bytes": duckdb_memory_limit(settings.parse_memory_bytes),
            "threads": settings.parse_threads or None,
            "max_line_bytes": settings.max_line_bytes,
        }
        (folder / child.REQUEST).write_text(json.dumps(request), encoding="utf-8")
        run = ClaimedRun(
            id=folder.name,
            kind="parse_file",
            tenant_id=None,
            subject="service",
            role=None,
            params={},
            attempt=1,
            max_attempts=1,
            timeout_seconds=settings.parse_timeout_seconds,
        )
        clock = threading.Timer(settings.parse_timeout_seconds, run.request_cancel, args=("timed_out",))
        clock.daemon = True
        clock.start()
        try:
            outcome = run_process(
                [sys.executable, "-m", "servicetsunami.connectors.files.child", str(folder)],
                run=run,
                workdir=folder,
                env={k: os.environ[k] for k in _ENV_KEEP if k in os.environ},
                limits=Limits(
                    memory_bytes=settings.parse_memory_bytes,
                    cpu_seconds=settings.parse_cpu_seconds,
                    die_with_parent=True,
                ),
                grace_seconds=1.0,
            )
        finally:
            clock.cancel()
        result_file = folder / child.RESULT
        if outcome.stopped and run.cancel_reason == "timed_out":
            raise FileLimitExceeded(
                f"reading {file_name} took longer than {settings.parse_timeout_seconds:g} s, the limit (setting "
                "ingest.parse_timeout_seconds): split the file, or raise the limit",
                limit="ingest.parse_timeout_seconds",
                maximum=settings.parse_timeout_seconds,
            )
        if outcome.returncode == 0 and result_file.is_file():
            return _answered(json.loads(result_file.read_text(encoding="utf-8")), file_name, settings)
        raise _died(outcome.returncode, outcome.stderr, file_name, settings)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _answered(result: dict[str, Any], file_name: str, settings: IngestSettings) -> Parsed:
    error = result.get("error")
    if error is None:
        return Parsed(columns=[(str(a), str(b)) for a, b in result["columns"]], sheets=list(result["sheets"]))
    kind = error["type"]
    if kind == "MemoryError":
        raise _memory_error(file_name, settings)
    if kind == "OSError":
        raise SourceError(f"cannot read {file_name}: {error['message']}")
    return_type = _ERRORS.get(kind, BadFile)
    raise return_type(error["message"], **error.get("details", {}))


def _memory_error(file_name: str, settings: IngestSettings) -> FileLimitExceeded:
    return FileLimitExceeded(
        f"reading {file_name} needed more than {settings.parse_memory_bytes} bytes of memory, the limit (setting "
        "ingest.parse_memory_bytes): split the file, or raise the limit",
        limit="ingest.parse_memory_bytes",
        maximum=settings.parse_memory_bytes,
    )


def _died(returncode: int, stderr: pathlib.Path, file_name: str, settings: IngestSettings) -> Exception:
    tail = _tail(stderr)
    if returncode < 0:
        sig = signal.Signals(-returncode)
        logger.warning("the reader of %s died of %s: %s", file_name, sig.name, tail)
        if sig == signal.SIGABRT and ("bad_alloc" in tail or "MemoryError" in tail):
            return _memory_error(file_name, settings)
        if sig == signal.SIGXCPU:
            return FileLimitExceeded(
                f"reading {file_name} used more than {settings.parse_cpu_seconds} s of CPU time, the limit (setting "
                "ingest.parse_cpu_seconds): split the file, or raise the limit",
                limit="ingest.parse_cpu_seconds",
                maximum=settings.parse_cpu_seconds,
            )
        return BadFile(
            f"{file_name} could not be read: the reader stopped on it ({sig.name}); check the file is well formed "
            "(or save it as CSV or Parquet)",
            reason="reader_crashed",
        )
    logger.warning("the reader of %s ended with status %s: %s", file_name, returncode, tail)
    if "MemoryError" in tail or "bad_alloc" in tail or "Out of Memory" in tail:
        return _memory_error(file_name, settings)
    return BadFile(f"{file_name} could not be read: the reader failed on it; check the file is well formed")


def _tail(path: pathlib.Path) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, path.stat().st_size - 2000))
            return fh.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""
