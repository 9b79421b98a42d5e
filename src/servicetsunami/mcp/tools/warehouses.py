"""``list_warehouses``, ``get_warehouse``, ``start_warehouse``: the SQL warehouses of the engine
(Databricks), or the embedded engine as its one warehouse."""

from __future__ import annotations

from typing import Annotated

from fastmcp import FastMCP
from fastmcp.tools.base import ToolResult
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from servicetsunami.mcp.auth import Caller
from servicetsunami.mcp.errors import call_service
from servicetsunami.mcp.results import output_schema, tool_result
from servicetsunami.services.catalog import warehouses
from servicetsunami.services.container import Services
from servicetsunami.services.models import Warehouse

_READ = ToolAnnotations(title="SQL warehouses", read_only_hint=True, open_world_hint=False)
_START = ToolAnnotations(
    title="Start a SQL warehouse",
    read_only_hint=False,
    destructive_hint=False,
    idempotent_hint=True,
    open_world_hint=False,
)
WarehouseId = Annotated[str, Field(description="The warehouse id, as list_warehouses shows it.")]


class WarehouseList(BaseModel):
    warehouses: list[Warehouse]


def register(server: FastMCP, services: Services, caller: Caller) -> None:
    @server.tool(tags={"read"}, annotations=_READ, output_schema=output_schema(WarehouseList))
    async def list_warehouses() -> ToolResult:
        """List the SQL warehouses statements can run on, with their state and size."""
        found = await call_service(warehouses.list_warehouses, services, caller.principal())
        return tool_result(WarehouseList(warehouses=found))

    @server.tool(tags={"read"}, annotations=_READ, output_schema=output_schema(Warehouse))
    async def get_warehouse(warehouse_id: WarehouseId) -> ToolResult:
        """One SQL warehouse: state (RUNNING, STARTING, STOPPED ...), size and settings."""
        return tool_result(await call_service(warehouses.get_warehouse, services, caller.principal(), warehouse_id))

    @server.tool(tags={"manage"}, annotations=_START, output_schema=output_schema(Warehouse))
    async def start_warehouse(warehouse_id: WarehouseId) -> ToolResult:
        """Start a stopped SQL warehouse. Returns at once (usually STARTING); poll get_warehouse."""
        return tool_result(await call_service(warehouses.start_warehouse, services, caller.principal(), warehouse_id))
