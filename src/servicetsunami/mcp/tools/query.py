"""``query_sql``: one read-only Databricks SQL statement against your catalog; ``execute_dbsql``,
``get_statement`` and ``cancel_statement``: the same as a long statement to poll or cancel."""

from __future__ import annotations

from typing import Annotated

from fastmcp import FastMCP
from fastmcp.tools.base import ToolResult
from mcp.types import ToolAnnotations
from pydantic import Field

from servicetsunami.mcp.auth import Caller
from servicetsunami.mcp.errors import call_service
from servicetsunami.mcp.results import output_schema, tool_result
from servicetsunami.services.catalog import query, statements
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

    @server.tool(
        tags={"read"},
        annotations=ToolAnnotations(title="Run a long SQL statement", read_only_hint=True, open_world_hint=False),
        output_schema=output_schema(statements.StatementPublic),
    )
    async def execute_dbsql(
        sql: Annotated[str, Field(description="One read-only statement in Databricks SQL, as for query_sql.")],
        wait_seconds: Annotated[
            int, Field(ge=0, le=50, description="Wait this long for the result; past it, poll get_statement.")
        ] = 10,
        max_rows: Annotated[int | None, Field(ge=1, description="At most this many rows (never above the cap).")] = (
            None
        ),
    ) -> ToolResult:
        """Run a statement that may take long: the result (first chunk) if it ends within wait_seconds,
        else its statement_id to poll with get_statement or stop with cancel_statement."""
        principal = caller.principal()
        result = await call_service(
            statements.execute_statement, services, principal, sql, wait_seconds=wait_seconds, max_rows=max_rows
        )
        return tool_result(result)

    @server.tool(
        tags={"read"},
        annotations=ToolAnnotations(title="Get a statement", read_only_hint=True, open_world_hint=False),
        output_schema=output_schema(statements.StatementPublic),
    )
    async def get_statement(
        statement_id: Annotated[str, Field(description="From execute_dbsql.")],
        chunk_index: Annotated[int, Field(ge=0, description="Which chunk of the result (manifest.chunks).")] = 0,
    ) -> ToolResult:
        """A statement's state; once SUCCEEDED, its manifest and the rows of chunk chunk_index."""
        principal = caller.principal()
        public = await call_service(statements.get_statement, services, principal, statement_id)
        if chunk_index and public.status.state == "SUCCEEDED":
            public.result = await call_service(
                statements.get_statement_chunk, services, principal, statement_id, chunk_index
            )
        return tool_result(public)

    @server.tool(
        tags={"read"},
        annotations=ToolAnnotations(title="Cancel a statement", read_only_hint=False, open_world_hint=False),
        output_schema=output_schema(statements.StatementPublic),
    )
    async def cancel_statement(statement_id: Annotated[str, Field(description="From execute_dbsql.")]) -> ToolResult:
        """Stop a running statement (its work stops on the engine); an ended one is left as it is."""
        result = await call_service(statements.cancel_statement, services, caller.principal(), statement_id)
        return tool_result(result)
