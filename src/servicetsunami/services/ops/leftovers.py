"""Leftovers of interrupted uploads, removed when the server starts.

Every failure path of an upload removes what it made (the temporary upload, the parser's folder,
the stage folder, the landed file and its empty folders); a process that was killed could not. At
start-up :func:`sweep_leftovers` removes, under the data folder and the local lakehouse:

- ``tmp/uploads/*`` (REST uploads streamed to disk) and ``tmp/parse/*`` (the reader processes'
  folders and private output);
- ``<catalog>/<schema>/<table>/_stage_*`` (Parquet staged for a commit that never came), and the
  table's folder when the stage was all it held;
- in each catalog's landing volume, ``.<name>.part`` files (copies cut short) and empty folders.

Only what nothing touched for ``ingest.sweep_after_seconds`` (the newest modification time in its
tree) is removed, so an upload another process runs at that moment keeps its files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from servicetsunami.tenancy import LANDING_VOLUME

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

logger = logging.getLogger(__name__)


def sweep_leftovers(svc: Services, *, now: float | None = None) -> list[Path]:
    """Remove the leftovers described in the module docstring; return what was removed."""
    settings = svc.settings
    cutoff = (time.time() if now is None else now) - settings.ingest.sweep_after_seconds
    removed: list[Path] = []
    home = settings.resolved_home
    for folder in (home / "tmp" / "uploads", home / "tmp" / "parse"):
        removed += [p for p in _children(folder) if _remove_if_stale(p, cutoff)]
    root = settings.resolved_lakehouse_root
    for catalog in _children(root):
        if not catalog.is_dir() or catalog.name.startswith((".", "_")):
            continue
        for stage in catalog.glob("*/*/_stage_*"):
            if _remove_if_stale(stage, cutoff):
                removed.append(stage)
                with contextlib.suppress(OSError):  # only when the stage was all the table folder held
                    stage.parent.rmdir()
        landing = catalog / "_volumes" / "bronze" / LANDING_VOLUME
        removed += _sweep_landing(landing, cutoff)
    for path in removed:
        logger.info("removed a leftover of an interrupted upload: %s", path)
    return removed


def _sweep_landing(landing: Path, cutoff: float) -> list[Path]:
    removed: list[Path] = []
    if not landing.is_dir():
        return removed
    walked = list(os.walk(landing, topdown=False))  # deepest first, so a parent can empty in turn
    touched = {}  # each folder's time before this sweep changed it by removing a child
    for dirpath, _, _ in walked:
        with contextlib.suppress(OSError):
            touched[dirpath] = os.stat(dirpath).st_mtime
    for dirpath, _, filenames in walked:
        folder = Path(dirpath)
        for name in filenames:
            path = folder / name
            if name.startswith(".") and name.endswith(".part") and _remove_if_stale(path, cutoff):
                removed.append(path)
        if folder != landing and touched.get(dirpath, cutoff) < cutoff:
            try:
                folder.rmdir()  # only when empty
            except OSError:
                continue
            removed.append(folder)
    return removed


def _children(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except OSError:
        return []


def _newest(path: Path) -> float:
    """The newest modification time of ``path`` and everything under it."""
    try:
        newest = path.lstat().st_mtime
    except OSError:
        return 0.0
    if path.is_dir() and not path.is_symlink():
        for dirpath, dirnames, filenames in os.walk(path):
            for name in [*dirnames, *filenames]:
                with contextlib.suppress(OSError):
                    newest = max(newest, os.lstat(os.path.join(dirpath, name)).st_mtime)
    return newest


def _remove_if_stale(path: Path, cutoff: float) -> bool:
    if _newest(path) >= cutoff:
        return False
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        logger.warning("could not remove a leftover %s: %s", path, exc.strerror)
        return False
    return True
