"""``upload_file``: land a file (CSV/TSV, Excel, Parquet, JSON, NDJSON) as a bronze table.

The bytes come base64-encoded in ``file_content``. Over stdio the local user may name a file on
their own disk with ``path`` instead; over HTTP ``path`` would read the *server's* disk, so it is
refused there. In multi-tenant mode a stdio ``path`` reads only the caller's tenant drop folder
(:mod:`servicetsunami.services.ingestion.local_files`). Over HTTP the MCP SDK caps a request body
at 4 MiB (fastmcp does not let us raise it), which bounds ``file_content`` there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from fastmcp import FastMCP
from fastmcp.tools.base import ToolResult
from mcp.types import ToolAnnotations
from pydantic import Field

from servicetsunami.errors import PermissionDenied
from servicetsunami.mcp.auth import Caller
from servicetsunami.mcp.errors import DoorError, call_service
from servicetsunami.mcp.results import output_schema, tool_result
from servicetsunami.services.container import Services
from servicetsunami.services.ingestion import uploads
from servicetsunami.services.models import UploadResult

# Overwrite replaces a table's rows, and a repeated append adds them twice.
UPLOAD_ANNOTATIONS = ToolAnnotations(
    title="Upload a file",
    read_only_hint=False,
    destructive_hint=True,
    idempotent_hint=False,
    open_world_hint=False,
)


def register(server: FastMCP, services: Services, caller: Caller) -> None:
    @server.tool(tags={"write"}, annotations=UPLOAD_ANNOTATIONS, output_schema=output_schema(UploadResult))
    async def upload_file(
        file_name: Annotated[
            str, Field(description="The file's name, e.g. 'sales.csv'; its extension picks the format.")
        ],
        dataset_name: Annotated[
            str,
            Field(description="Table to create or load in bronze: lower-case letters, digits, underscores."),
        ],
        file_content: Annotated[
            str | None,
            Field(
                description=(
                    "The file's bytes, base64-encoded. Over HTTP one request carries at most 4 MiB (about "
                    "3 MB of file); load bigger files with `tsunami upload` or the local server's path."
                )
            ),
        ] = None,
        mode: Annotated[
            Literal["create", "append", "overwrite"],
            Field(description="create: new table (fails if it exists); append: add rows; overwrite: replace."),
        ] = "create",
        path: Annotated[
            str | None,
            Field(
                description="Instead of file_content: a file on your own machine (local stdio server only; "
                "in multi-tenant mode only files in your tenant's drop folder)."
            ),
        ] = None,
        format: Annotated[
            str | None,
            Field(description="csv, tsv, xlsx, parquet, json or ndjson; guessed from file_name if omitted."),
        ] = None,
        delimiter: Annotated[
            str | None, Field(description="Field separator for delimited text; sniffed if omitted.")
        ] = None,
        header: Annotated[
            bool | None, Field(description="Whether the first row holds column names; sniffed if omitted.")
        ] = None,
        encoding: Annotated[
            str | None, Field(description="Text encoding: utf-8 (the default), utf-16 or latin-1.")
        ] = None,
        sheet: Annotated[
            str | None, Field(description="Excel only: the sheet to load; every sheet if omitted.")
        ] = None,
    ) -> ToolResult:
        """Upload a file and load it into a bronze Delta table (typed columns, one atomic commit).
        Returns the table, row count, columns and the new table version."""
        principal = caller.principal()
        if path is not None and not caller.is_local:
            raise DoorError.from_error(
                PermissionDenied(
                    "path= reads files on the server's disk and is only available with the local stdio "
                    "server (`tsunami mcp`); over HTTP send the bytes base64-encoded in file_content"
                )
            )
        content = None
        if file_content is not None:  # decoding a large file takes a while: not on the event loop
            content = await call_service(uploads.decode_base64, file_content)
        options = uploads.FileOptions(format=format, delimiter=delimiter, header=header, encoding=encoding, sheet=sheet)
        result = await call_service(
            uploads.upload_file,
            services,
            principal,
            file_name=file_name,
            dataset_name=dataset_name,
            content=content,
            path=Path(path).expanduser() if path is not None else None,
            mode=mode,
            options=options,
        )
        return tool_result(result)
