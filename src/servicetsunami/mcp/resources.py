"""Resource templates over the caller's tables.

- ``table://{catalog}/{schema}/{name}/schema``: what ``describe_table`` returns, as JSON.
- ``table://{catalog}/{schema}/{name}/preview``: the first rows, as a ``QueryResult`` JSON.

The catalog in the URI is passed on as part of a three-part name, so the service refuses any
catalog but the caller's own (``permission_denied``) exactly as it does for tool arguments.
"""

from __future__ import annotations

from fastmcp import FastMCP

from servicetsunami.mcp.auth import Caller
from servicetsunami.mcp.errors import call_service
from servicetsunami.mcp.results import resource_json
from servicetsunami.services import catalog as catalog_service
from servicetsunami.services.container import Services

JSON = "application/json"
PREVIEW_ROWS = 20


def register(server: FastMCP, services: Services, caller: Caller) -> None:
    @server.resource(
        "table://{catalog}/{schema}/{name}/schema",
        name="table_schema",
        title="Table schema",
        mime_type=JSON,
        tags={"read"},
    )
    async def table_schema(catalog: str, schema: str, name: str) -> str:
        """Columns, types, row count, version and history of a table in your catalog."""
        principal = caller.principal()
        description = await call_service(
            catalog_service.describe_table, services, principal, f"{catalog}.{schema}.{name}"
        )
        return resource_json(description)

    @server.resource(
        "table://{catalog}/{schema}/{name}/preview",
        name="table_preview",
        title="Table preview",
        mime_type=JSON,
        tags={"read"},
    )
    async def table_preview(catalog: str, schema: str, name: str) -> str:
        """The first rows of a table in your catalog."""
        principal = caller.principal()
        preview = await call_service(
            catalog_service.preview_table,
            services,
            principal,
            f"{catalog}.{schema}.{name}",
            limit=PREVIEW_ROWS,
        )
        return resource_json(preview)
