"""Volume file tools: ``list_dbfs_files``, ``upload_volume_file``, ``download_volume_file``,
``delete_volume_file`` over ``/Volumes/<your catalog>/<schema>/<volume>/...`` (the tenant's own
catalog only; paths with ``..`` are refused). File bytes travel base64-encoded."""

from __future__ import annotations

import base64
from typing import Annotated

from fastmcp import FastMCP
from fastmcp.tools.base import ToolResult
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from servicetsunami.mcp.auth import Caller
from servicetsunami.mcp.errors import call_service
from servicetsunami.mcp.results import output_schema, tool_result
from servicetsunami.services.container import Services
from servicetsunami.services.ingestion import uploads
from servicetsunami.services.notebooks import files
from servicetsunami.services.notebooks.files import VolumeEntry

_READ = ToolAnnotations(title="Volume files", read_only_hint=True, open_world_hint=False)
_WRITE = ToolAnnotations(
    title="Write a volume file",
    read_only_hint=False,
    destructive_hint=True,
    idempotent_hint=True,
    open_world_hint=False,
)
VolumePathArg = Annotated[str, Field(description="/Volumes/<your catalog>/<schema>/<volume>/<path>")]


class FileList(BaseModel):
    files: list[VolumeEntry]


class FileContent(BaseModel):
    path: str
    size: int
    content_base64: str


class FileChanged(BaseModel):
    path: str
    bytes: int | None = None
    deleted: bool | None = None


def register(server: FastMCP, services: Services, caller: Caller) -> None:
    @server.tool(tags={"read"}, annotations=_READ, output_schema=output_schema(FileList))
    async def list_dbfs_files(path: VolumePathArg) -> ToolResult:
        """Files and folders directly in a volume folder of your catalog."""
        return tool_result(FileList(files=await call_service(files.list_files, services, caller.principal(), path)))

    @server.tool(tags={"read"}, annotations=_READ, output_schema=output_schema(FileContent))
    async def download_volume_file(path: VolumePathArg) -> ToolResult:
        """A volume file's bytes, base64-encoded (at most 16 MiB)."""
        data = await call_service(files.read_file, services, caller.principal(), path)
        return tool_result(FileContent(path=path, size=len(data), content_base64=base64.b64encode(data).decode()))

    @server.tool(tags={"write"}, annotations=_WRITE, output_schema=output_schema(FileChanged))
    async def upload_volume_file(
        path: VolumePathArg,
        content_base64: Annotated[str, Field(description="The file's bytes, base64-encoded")],
        overwrite: Annotated[bool, Field(description="Replace a file already there")] = False,
    ) -> ToolResult:
        """Store a file in a volume of your catalog."""
        data = await call_service(uploads.decode_base64, content_base64)
        written = await call_service(files.write_file, services, caller.principal(), path, data, overwrite=overwrite)
        return tool_result(FileChanged(path=path, bytes=written))

    @server.tool(tags={"write"}, annotations=_WRITE, output_schema=output_schema(FileChanged))
    async def delete_volume_file(
        path: VolumePathArg,
        recurse: Annotated[bool, Field(description="Delete every file under a folder")] = False,
    ) -> ToolResult:
        """Delete a volume file (or a folder's files with recurse)."""
        removed = await call_service(files.delete_file, services, caller.principal(), path, recurse=recurse)
        return tool_result(FileChanged(path=path, deleted=removed))
