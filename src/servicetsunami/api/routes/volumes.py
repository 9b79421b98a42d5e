"""Files in the tenant's volumes, shaped like Databricks' Files API: ``GET
/volumes/directories/{path}`` lists a folder, ``GET /volumes/files/{path}`` streams a file out,
``PUT /volumes/files/{path}`` streams the request body in (at most ``ingest.max_upload_bytes``),
``DELETE /volumes/files/{path}`` removes it. ``{path}`` is what follows ``/Volumes/``:
``<your catalog>/<schema>/<volume>/<file>``; another catalog is not found and ``.``/``..`` are refused."""

from __future__ import annotations

import pathlib
import secrets
from collections.abc import Iterator
from typing import Annotated, BinaryIO

import anyio
from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from servicetsunami.api.deps import PrincipalDep, ServicesDep
from servicetsunami.api.schemas.common import COMMON_ERRORS
from servicetsunami.errors import BodyTooLarge, NotFound
from servicetsunami.services.notebooks import files
from servicetsunami.services.notebooks.files import VolumeEntry
from servicetsunami.tenancy import Scope

router = APIRouter(prefix="/volumes", tags=["volumes"])
CHUNK = 1024 * 1024


class VolumeListing(BaseModel):
    files: list[VolumeEntry]


class VolumeFileStored(BaseModel):
    path: str
    bytes: int


def _volume_path(path: str) -> str:
    return "/Volumes/" + path


@router.get(
    "/directories/{path:path}", operation_id="list_volume_files", response_model=VolumeListing, responses=COMMON_ERRORS
)
async def list_volume_files(path: str, services: ServicesDep, principal: PrincipalDep) -> VolumeListing:
    """Files and folders (ending with ``/``) directly in a volume folder."""
    return VolumeListing(files=await run_in_threadpool(files.list_files, services, principal, _volume_path(path)))


@router.get(
    "/files/{path:path}",
    operation_id="download_volume_file",
    response_class=StreamingResponse,
    responses={**COMMON_ERRORS, 200: {"content": {"application/octet-stream": {}}, "description": "The file"}},
)
async def download_volume_file(path: str, services: ServicesDep, principal: PrincipalDep) -> StreamingResponse:
    """The file's bytes, streamed."""
    handle = await run_in_threadpool(files.open_file, services, principal, _volume_path(path))
    return StreamingResponse(_chunks(handle), media_type="application/octet-stream")


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK):
            yield chunk


@router.put(
    "/files/{path:path}",
    operation_id="upload_volume_file",
    status_code=201,
    response_model=VolumeFileStored,
    responses=COMMON_ERRORS,
    openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {}}}},
)
async def upload_volume_file(
    path: str,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    overwrite: Annotated[bool, Query(description="Replace a file already there")] = False,
) -> VolumeFileStored:
    """Store the request body as a file (streamed to disk first, then stored at once)."""
    principal.require(Scope.WRITE)  # before reading a possibly large body
    target = _volume_path(path)
    files.VolumePath(principal, target)  # a refused path is answered before the body is read
    limit = services.settings.ingest.max_upload_bytes
    folder = pathlib.Path(services.settings.api.upload_dir or services.settings.resolved_home / "tmp" / "uploads")
    folder = folder.expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    spool = folder / f"volume-{secrets.token_hex(8)}"
    try:
        size = 0
        async with await anyio.open_file(spool, "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge(f"the file is larger than {limit} bytes, the limit for uploads")
                await out.write(chunk)
        stored = await run_in_threadpool(
            lambda: files.store_file(services, principal, target, spool, overwrite=overwrite)
        )
    finally:
        spool.unlink(missing_ok=True)
    return VolumeFileStored(path=target, bytes=stored)


@router.delete("/files/{path:path}", operation_id="delete_volume_file", status_code=204, responses=COMMON_ERRORS)
async def delete_volume_file(
    path: str,
    services: ServicesDep,
    principal: PrincipalDep,
    recurse: Annotated[bool, Query(description="Delete every file under a folder")] = False,
) -> Response:
    """Delete a file (or, with ``recurse``, every file under a folder); 404 when nothing was there."""
    removed = await run_in_threadpool(
        lambda: files.delete_file(services, principal, _volume_path(path), recurse=recurse)
    )
    if not removed:
        raise NotFound("nothing at that path")
    return Response(status_code=204)
