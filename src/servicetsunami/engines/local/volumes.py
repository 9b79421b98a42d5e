"""Volumes of the local engine: folders of files under ``<root>/<catalog>/_volumes/<schema>/<volume>``,
addressed as ``/Volumes/<catalog>/<schema>/<volume>/<path>`` like Unity Catalog volumes."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from servicetsunami.engines.base import VolumeFile
from servicetsunami.engines.local.storage import Layout
from servicetsunami.errors import EngineError, NotFound


class LocalVolumes:
    """Volume file operations of :class:`~servicetsunami.engines.local.engine.LocalEngine`."""

    _layout: Layout

    def put_file(self, catalog: str, schema: str, volume: str, path: str, data: BinaryIO | Path, /) -> VolumeFile:
        target = self._layout.volume_file(catalog, schema, volume, path)
        tmp = target.with_name(f".{target.name}.part")
        try:
            for attempt in range(3):
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    if isinstance(data, Path):
                        shutil.copyfile(data, tmp)  # kernel-side copy (copy_file_range / sendfile)
                    else:
                        with open(tmp, "wb") as out:
                            shutil.copyfileobj(data, out, 1024 * 1024)
                    break
                except FileNotFoundError:  # a delete of another file pruned the folder just made: again
                    if attempt == 2 or (not isinstance(data, Path) and data.tell() != 0):
                        raise
            tmp.replace(target)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise EngineError(f"could not store {path} in volume {schema}.{volume}: {exc.strerror}") from exc
        return self._volume_file(catalog, schema, volume, target)

    def list_files(self, catalog: str, schema: str, volume: str, /, *, prefix: str = "") -> list[VolumeFile]:
        base = self._layout.volume_dir(catalog, schema, volume)
        if not base.is_dir():
            return []
        return [
            self._volume_file(catalog, schema, volume, p)
            for p in sorted(base.rglob("*"))
            if p.is_file() and not p.name.startswith(".") and str(p.relative_to(base)).startswith(prefix)
        ]

    def open_file(self, catalog: str, schema: str, volume: str, path: str, /) -> BinaryIO:
        target = self._layout.volume_file(catalog, schema, volume, path)
        if not target.is_file():
            raise NotFound(f"file {path} does not exist in volume {schema}.{volume}")
        return open(target, "rb")

    def delete_file(self, catalog: str, schema: str, volume: str, path: str, /) -> None:
        target = self._layout.volume_file(catalog, schema, volume, path)
        target.unlink(missing_ok=True)
        prune_empty_parents(target.parent, self._layout.volume_dir(catalog, schema, volume))

    def local_path(self, catalog: str, schema: str, volume: str, path: str, /) -> str | None:
        return str(self._layout.volume_file(catalog, schema, volume, path))

    def _volume_file(self, catalog: str, schema: str, volume: str, p: Path) -> VolumeFile:
        st = p.stat()
        rel = p.relative_to(self._layout.volume_dir(catalog, schema, volume)).as_posix()
        return VolumeFile(
            path=f"/Volumes/{catalog}/{schema}/{volume}/{rel}",
            size_bytes=st.st_size,
            modified_at=datetime.fromtimestamp(st.st_mtime, tz=UTC),
        )


def prune_empty_parents(folder: Path, stop: Path) -> None:
    """Remove ``folder`` and its parents below ``stop`` while they are empty (an upload's own
    ``uploads/<date>/<id>/`` folders, once its file is deleted)."""
    while folder != stop and stop in folder.parents:
        try:
            folder.rmdir()
        except OSError:  # not empty (or already gone with a sibling's delete): stop here
            return
        folder = folder.parent
