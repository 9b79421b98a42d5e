"""The console's files (``static/``), sent gzip-compressed to browsers that accept it.

The chart libraries (vega, vega-lite, vega-embed: about 840 KB of script) are loaded only when a
chart is drawn; compressed they cross the wire at about a third of that. Each file is compressed
once, when first asked for, and kept in memory with the modification time it was read at.
"""

from __future__ import annotations

import gzip
import os
import threading

from starlette.datastructures import Headers
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

MIN_BYTES = 4096  # smaller files gain little and cost a header more
COMPRESSIBLE = (".js", ".css", ".txt")


class CompressedStatic(StaticFiles):
    """:class:`StaticFiles` answering with the file's gzip form when the request accepts gzip."""

    def __init__(self, *, directory: str | os.PathLike[str]) -> None:
        super().__init__(directory=directory)
        self._compressed: dict[str, tuple[float, bytes]] = {}
        self._lock = threading.Lock()

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if not isinstance(response, FileResponse) or response.status_code != 200:
            return response
        file_path = str(response.path)
        if not file_path.endswith(COMPRESSIBLE) or response.stat_result is None:
            return response
        response.headers["vary"] = "accept-encoding"
        if response.stat_result.st_size < MIN_BYTES or "gzip" not in Headers(scope=scope).get("accept-encoding", ""):
            return response
        body = self._gzipped(file_path, response.stat_result.st_mtime)
        etag = response.headers["etag"].rstrip('"') + '-gzip"'
        headers = {
            "etag": etag,
            "last-modified": response.headers["last-modified"],
            "content-encoding": "gzip",
            "vary": "accept-encoding",
        }
        if Headers(scope=scope).get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=response.media_type, headers=headers)

    def _gzipped(self, file_path: str, mtime: float) -> bytes:
        with self._lock:
            kept = self._compressed.get(file_path)
            if kept is not None and kept[0] == mtime:
                return kept[1]
        with open(file_path, "rb") as handle:
            body = gzip.compress(handle.read(), compresslevel=9, mtime=0)
        with self._lock:
            self._compressed[file_path] = (mtime, body)
        return body
