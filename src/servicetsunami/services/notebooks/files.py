"""Files in the tenant's volumes, addressed as Databricks does: ``/Volumes/<catalog>/<schema>/<volume>/<path>``
(``dbfs:`` in front is accepted). Only the caller's own catalog; no ``.`` or ``..`` in a path.
Used by ``dbutils.fs`` in notebooks and by the file tools."""

from __future__ import annotations

import io
import posixpath
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from pydantic import BaseModel, Field

from servicetsunami.errors import Conflict, InvalidInput, NotFound
from servicetsunami.tenancy import Principal, Scope, check_identifier

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

MAX_DOWNLOAD_BYTES = 16 * 1024 * 1024


class VolumeEntry(BaseModel):
    path: str = Field(description="/Volumes/<catalog>/<schema>/<volume>/...; folders end with /")
    name: str
    size: int
    modificationTime: int = Field(description="Milliseconds since the epoch (0 for folders)")


class VolumePath:
    """A checked volume path of the caller's catalog."""

    def __init__(self, principal: Principal, path: str) -> None:
        if not isinstance(path, str):
            raise InvalidInput("a volume path is text: /Volumes/<catalog>/<schema>/<volume>/...")
        text = path.removeprefix("dbfs:")
        if not text.startswith("/Volumes/"):
            raise InvalidInput("paths are volume paths: /Volumes/<catalog>/<schema>/<volume>/<path>")
        parts = text.split("/")[2:]
        if any(p in ("..", ".") for p in parts):
            raise InvalidInput("a volume path cannot contain '.' or '..'")
        norm = posixpath.normpath("/" + "/".join(parts)).lstrip("/").split("/")
        if len(norm) < 3:
            raise InvalidInput("a volume path is /Volumes/<catalog>/<schema>/<volume>/...")
        if norm[0] != principal.catalog:
            raise NotFound(f"no catalog {norm[0]} here; your catalog is {principal.catalog}")
        self.catalog = norm[0]
        self.schema = check_identifier(norm[1], what="schema")
        self.volume = check_identifier(norm[2], what="volume")
        self.rest = "/".join(norm[3:])

    @property
    def base(self) -> str:
        return f"/Volumes/{self.catalog}/{self.schema}/{self.volume}/"

    def parts(self) -> tuple[str, str, str, str]:
        return self.catalog, self.schema, self.volume, self.rest


def list_files(svc: Services, principal: Principal, path: str, /) -> list[VolumeEntry]:
    """What is directly in a volume folder: files, and sub-folders (ending with ``/``)."""
    principal.require(Scope.READ)
    where = VolumePath(principal, path)
    prefix = where.rest.rstrip("/") + "/" if where.rest else ""
    out: list[VolumeEntry] = []
    seen: set[str] = set()
    for f in svc.engine.list_files(where.catalog, where.schema, where.volume, prefix=prefix):
        rel = f.path.removeprefix(where.base)
        tail = rel[len(prefix) :] if rel.startswith(prefix) else rel
        first, _sep, more = tail.partition("/")
        name = first + ("/" if more else "")
        if name in seen:
            continue
        seen.add(name)
        modified = 0 if more else int(f.modified_at.timestamp() * 1000)
        size = 0 if more else f.size_bytes
        out.append(VolumeEntry(path=where.base + prefix + name, name=name, size=size, modificationTime=modified))
    return out


def exists(svc: Services, where: VolumePath, /) -> bool:
    full = where.base + where.rest
    return any(
        f.path in (full, where.rest)
        for f in svc.engine.list_files(where.catalog, where.schema, where.volume, prefix=where.rest)
    )


def read_file(svc: Services, principal: Principal, path: str, /, *, max_bytes: int = MAX_DOWNLOAD_BYTES) -> bytes:
    """Up to ``max_bytes`` of a file."""
    principal.require(Scope.READ)
    where = VolumePath(principal, path)
    if not where.rest:
        raise InvalidInput("name a file inside the volume")
    with svc.engine.open_file(*where.parts()) as f:
        return f.read(max(0, min(max_bytes, MAX_DOWNLOAD_BYTES)))


def write_file(svc: Services, principal: Principal, path: str, data: bytes, /, *, overwrite: bool = False) -> int:
    """Store ``data`` at ``path``; an existing file needs ``overwrite``. Returns the bytes written."""
    principal.require(Scope.WRITE)
    where = VolumePath(principal, path)
    if not where.rest:
        raise InvalidInput("name a file inside the volume")
    if not overwrite and exists(svc, where):
        raise Conflict(f"{where.rest} already exists; overwrite it explicitly")
    svc.engine.put_file(*where.parts(), io.BytesIO(data))
    return len(data)


def open_file(svc: Services, principal: Principal, path: str, /) -> BinaryIO:
    """A volume file opened for reading, whatever its size (the caller closes it)."""
    principal.require(Scope.READ)
    where = VolumePath(principal, path)
    if not where.rest:
        raise InvalidInput("name a file inside the volume")
    return svc.engine.open_file(*where.parts())


def store_file(svc: Services, principal: Principal, path: str, local: Path, /, *, overwrite: bool = False) -> int:
    """Store a local file (a received upload) at ``path``; an existing file needs ``overwrite``.
    Returns the bytes stored."""
    principal.require(Scope.WRITE)
    where = VolumePath(principal, path)
    if not where.rest:
        raise InvalidInput("name a file inside the volume")
    if not overwrite and exists(svc, where):
        raise Conflict(f"{where.rest} already exists; overwrite it explicitly")
    return svc.engine.put_file(*where.parts(), local).size_bytes


def copy_file(svc: Services, principal: Principal, source: str, target: str, /) -> None:
    principal.require(Scope.WRITE)
    src, dst = VolumePath(principal, source), VolumePath(principal, target)
    if not dst.rest:
        raise InvalidInput("name a file inside the target volume")
    with svc.engine.open_file(*src.parts()) as f:
        svc.engine.put_file(*dst.parts(), f)


def delete_file(svc: Services, principal: Principal, path: str, /, *, recurse: bool = False) -> bool:
    """Delete a file (or, with ``recurse``, every file under a folder); False when nothing was there."""
    principal.require(Scope.WRITE)
    where = VolumePath(principal, path)
    if not where.rest:
        raise InvalidInput("name a file (or, with recurse, a folder) inside the volume")
    if exists(svc, where):
        svc.engine.delete_file(*where.parts())
        return True
    if not recurse:
        return False
    files = svc.engine.list_files(where.catalog, where.schema, where.volume, prefix=where.rest.rstrip("/") + "/")
    for f in files:
        svc.engine.delete_file(where.catalog, where.schema, where.volume, f.path.removeprefix(where.base))
    return bool(files)
