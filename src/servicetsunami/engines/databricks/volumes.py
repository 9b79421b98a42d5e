"""Volume files of the Databricks engine, through the Files API (``/Volumes/<catalog>/<schema>/<volume>/...``).

The folder ``_tsunami`` of a volume is the engine's own (staged Parquet files, the commit ledger):
hidden from listings and refused as a user path.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from servicetsunami.engines.base import VolumeFile
from servicetsunami.engines.databricks import writes
from servicetsunami.engines.databricks.workspace import Workspace
from servicetsunami.errors import InvalidInput, NotFound


class DatabricksVolumes:
    """Volume file operations of :class:`~servicetsunami.engines.databricks.engine.DatabricksEngine`."""

    ws: Workspace

    # -- volumes ------------------------------------------------------------------------------

    def put_file(self, catalog: str, schema: str, volume: str, path: str, data: BinaryIO | Path, /) -> VolumeFile:
        target = _volume_path(catalog, schema, volume, path)
        with self.ws.translated(f"storing {path} in volume {schema}.{volume}"):
            if isinstance(data, Path):
                with data.open("rb") as fh:
                    self.ws.client.files.upload(target, fh, overwrite=True)
            else:
                self.ws.client.files.upload(target, data, overwrite=True)
            meta = self.ws.client.files.get_metadata(target)
        return VolumeFile(target, int(meta.content_length or 0), _http_date(meta.last_modified))

    def list_files(self, catalog: str, schema: str, volume: str, /, *, prefix: str = "") -> list[VolumeFile]:
        from databricks.sdk.errors import NotFound as SdkNotFound

        root = f"/Volumes/{catalog}/{schema}/{volume}"
        out: list[VolumeFile] = []
        pending = [root]
        with self.ws.translated(f"listing volume {schema}.{volume}"):
            while pending:
                folder = pending.pop()
                try:
                    entries = list(self.ws.client.files.list_directory_contents(folder))
                except SdkNotFound:
                    continue
                for e in entries:
                    path = str(e.path).rstrip("/")
                    rel = path[len(root) + 1 :]
                    if rel == writes.INTERNAL or rel.startswith(writes.INTERNAL + "/"):
                        continue
                    if e.is_directory:
                        pending.append(path)
                    elif rel.startswith(prefix):
                        modified = datetime.fromtimestamp((e.last_modified or 0) / 1000, tz=UTC)
                        out.append(VolumeFile(path, int(e.file_size or 0), modified))
        return sorted(out, key=lambda f: f.path)

    def open_file(self, catalog: str, schema: str, volume: str, path: str, /) -> BinaryIO:
        target = _volume_path(catalog, schema, volume, path)
        response = self.ws.call(
            lambda: self.ws.client.files.download(target), action=f"reading {path} from volume {schema}.{volume}"
        )
        if response.contents is None:
            raise NotFound(f"file {path} does not exist in volume {schema}.{volume}")
        return response.contents

    def delete_file(self, catalog: str, schema: str, volume: str, path: str, /) -> None:
        from databricks.sdk.errors import NotFound as SdkNotFound

        target = _volume_path(catalog, schema, volume, path)
        with self.ws.translated(f"deleting {path} from volume {schema}.{volume}"), contextlib.suppress(SdkNotFound):
            self.ws.client.files.delete(target)

    def local_path(self, catalog: str, schema: str, volume: str, path: str, /) -> str | None:
        return None


def _volume_path(catalog: str, schema: str, volume: str, path: str) -> str:
    rel = PurePosixPath(path)
    if rel.is_absolute() or not rel.parts or any(p in ("", ".", "..") for p in rel.parts):
        raise InvalidInput(f"volume path {path!r} must be relative and may not contain '..'")
    if any(p.startswith(".") for p in rel.parts) or rel.parts[0] == writes.INTERNAL:
        raise InvalidInput(f"volume path {path!r} may not contain hidden or reserved names")
    return f"/Volumes/{catalog}/{schema}/{volume}/{rel.as_posix()}"


def _http_date(value: str | None) -> datetime:
    if not value:
        return datetime.now(UTC)
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return datetime.now(UTC)
