"""Resource templates over the caller's tables.

- ``table://{catalog}/{schema}/{name}/schema``: what ``describe_table`` returns (lineage included), as
  JSON, plus ``profile``: what ``profile_table`` returns.
- ``table://{catalog}/{schema}/{name}/preview``: the first rows, as a ``QueryResult`` JSON (PII masked
  when the tenant asks), plus ``lineage``: where the table came from.

The catalog in the URI is passed on as part of a three-part name, so the service refuses any
catalog but the caller's own (``permission_denied``) exactly as it does for tool arguments.
"""

from __future__ import annotations

import json

from fastmcp import FastMCP

from servicetsunami.mcp.auth import Caller
from servicetsunami.mcp.errors import call_service
from servicetsunami.services.catalog import tables as catalog_service
from servicetsunami.services.container import Services
from servicetsunami.services.governance import lineage, profiling

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
        profile = await call_service(profiling.profile_table, services, principal, f"{catalog}.{schema}.{name}")
        out = description.model_dump(mode="json", by_alias=True)
        out["profile"] = profile.model_dump(mode="json")
        return json.dumps(out, ensure_ascii=False)

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
        origin = await call_service(lineage.origin, services, principal, f"{schema}.{name}")
        out = preview.model_dump(mode="json", by_alias=True)
        out["lineage"] = origin
        return json.dumps(out, ensure_ascii=False, default=str)
