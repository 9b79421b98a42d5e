"""``query_sql``: one read-only Databricks SQL statement against your catalog."""

from __future__ import annotations

from typing import Annotated

from fastmcp import FastMCP
from fastmcp.tools.base import ToolResult
from mcp.types import ToolAnnotations
from pydantic import Field

from servicetsunami.mcp.auth import Caller
from servicetsunami.mcp.errors import call_service
from servicetsunami.mcp.results import output_schema, tool_result
from servicetsunami.services.catalog import query
from servicetsunami.services.container import Services
from servicetsunami.services.models import QueryResult


def register(server: FastMCP, services: Services, caller: Caller) -> None:
    @server.tool(
        tags={"read"},
        annotations=ToolAnnotations(title="Run a SQL query", read_only_hint=True, open_world_hint=False),
        output_schema=output_schema(QueryResult),
    )
    async def query_sql(
        sql: Annotated[
            str,
            Field(
                description=(
                    "One read-only statement in Databricks SQL (SELECT, WITH, VALUES, EXPLAIN, DESCRIBE, "
                    "SHOW). Name tables as schema.table, e.g. SELECT * FROM bronze.sales."
                )
            ),
        ],
        max_rows: Annotated[
            int | None, Field(ge=1, description="Return at most this many rows (never above the server cap).")
        ] = None,
    ) -> ToolResult:
        """Run a read-only SQL query on your tables. Results over the row or byte cap come back with
        truncated=true and a hint; aggregate or add LIMIT/WHERE instead of paging through raw rows."""
        result = await call_service(query.query_sql, services, caller.principal(), sql, max_rows=max_rows)
        return tool_result(result)
