"""Catalog tools: ``list_tables`` and ``describe_table``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastmcp import FastMCP
from fastmcp.tools.base import ToolResult
from mcp.types import ToolAnnotations
from pydantic import Field

from servicetsunami.mcp.auth import Caller
from servicetsunami.mcp.errors import call_service
from servicetsunami.mcp.results import TableList, output_schema, tool_result
from servicetsunami.services.catalog import tables as catalog
from servicetsunami.services.container import Services
from servicetsunami.services.models import TableDescription

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)


def register(server: FastMCP, services: Services, caller: Caller) -> None:
    @server.tool(
        tags={"read"},
        annotations=READ_ONLY.model_copy(update={"title": "List tables"}),
        output_schema=output_schema(TableList),
    )
    async def list_tables(
        layer: Annotated[
            Literal["bronze", "silver", "gold"] | None, Field(description="Only the tables of this schema.")
        ] = None,
    ) -> ToolResult:
        """List the tables in your catalog with their row counts, sizes and current versions."""
        tables = await call_service(catalog.list_tables, services, caller.principal(), layer=layer)
        return tool_result(TableList(tables=tables))

    @server.tool(
        tags={"read"},
        annotations=READ_ONLY.model_copy(update={"title": "Describe a table"}),
        output_schema=output_schema(TableDescription),
    )
    async def describe_table(
        table_name: Annotated[str, Field(description="'schema.table' (e.g. 'bronze.sales'), or 'table' for bronze.")],
        version: Annotated[int | None, Field(ge=0, description="Describe this earlier version (time travel).")] = None,
    ) -> ToolResult:
        """Columns and types, row count, size, partitioning, recent history and where the rows came from."""
        description = await call_service(
            catalog.describe_table, services, caller.principal(), table_name, version=version
        )
        return tool_result(description)
