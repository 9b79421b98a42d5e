"""Silver, gold, lineage and profiling tools.

Writes (``transform_to_silver``, ``create_gold_table``, ``refresh_gold_table``) need an engineer;
previews, lineage and profiles are open to analysts. The spec's fields are summed up in the
description of ``transform_to_silver``; the README has the full reference.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastmcp import FastMCP
from fastmcp.tools.base import ToolResult
from mcp.types import ToolAnnotations
from pydantic import Field

from servicetsunami.mcp.auth import Caller
from servicetsunami.mcp.errors import call_service
from servicetsunami.mcp.results import output_schema, tool_result
from servicetsunami.services.container import Services
from servicetsunami.services.governance import lineage, pii, profiling
from servicetsunami.services.transforms import gold, silver
from servicetsunami.services.transforms.spec import spec_schema_summary

READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
# Re-running rebuilds the same table from the same inputs.
BUILD = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)

TABLE = Annotated[str, Field(description="'schema.table' (e.g. 'bronze.sales'), or 'table' for bronze.")]
SPEC = Annotated[
    dict[str, Any] | None,
    Field(
        description="The cleaning spec (see the tool description). Omit to re-run the stored spec of the target "
        "(or the default cleaning the first time); {} for the default cleaning.",
    ),
]

# The spec's fields in a few lines (the README has the full reference), and a wrong spec is refused
# with a message naming the field, so the schema is not repeated on every tools/list.
_SPEC_DOC = spec_schema_summary()


def register(server: FastMCP, services: Services, caller: Caller) -> None:
    @server.tool(
        tags={"write"},
        annotations=BUILD.model_copy(update={"title": "Transform bronze to silver"}),
        output_schema=output_schema(silver.TransformResult),
        description=(
            "Clean a bronze table into silver.<target_table> (default: the bronze name) with one SQL statement, "
            "in one atomic overwrite; nothing is written when it fails. Without a spec: snake_case names, types "
            "inferred from the values (numbers with thousands separators, several date formats), trimmed text, "
            "empty text as NULL, exact duplicate rows removed, bronze metadata columns kept. The spec is stored; "
            "call again without transformations to re-run it. Use preview_transform first to see the SQL and "
            f"rows.\nSpec fields:\n{_SPEC_DOC}"
        ),
    )
    async def transform_to_silver(
        bronze_table: TABLE,
        transformations: SPEC = None,
        target_table: Annotated[str | None, Field(description="Silver table name; the bronze name if omitted.")] = None,
    ) -> ToolResult:
        result = await call_service(
            silver.transform_to_silver,
            services,
            caller.principal(),
            bronze_table,
            transformations=transformations,
            target_table=target_table,
        )
        return tool_result(result)

    @server.tool(
        tags={"read"},
        annotations=READ.model_copy(update={"title": "Preview a silver transform"}),
        output_schema=output_schema(silver.TransformPreview),
    )
    async def preview_transform(
        bronze_table: TABLE,
        transformations: SPEC = None,
        target_table: Annotated[str | None, Field(description="Silver table name; the bronze name if omitted.")] = None,
        limit: Annotated[int, Field(ge=1, description="Rows to show.")] = 20,
    ) -> ToolResult:
        """Show the SQL transform_to_silver would run, the inferred types, values a 'fail' cast would stop
        on, and the first rows; nothing is written."""
        result = await call_service(
            silver.preview_transform,
            services,
            caller.principal(),
            bronze_table,
            transformations=transformations,
            target_table=target_table,
            limit=limit,
        )
        return tool_result(result)

    @server.tool(
        tags={"write"},
        annotations=BUILD.model_copy(update={"title": "Create a gold table or view"}),
        output_schema=output_schema(gold.GoldResult),
    )
    async def create_gold_table(
        name: Annotated[str, Field(description="gold.<name>: lower-case letters, digits, underscores.")],
        sql: Annotated[str, Field(description="One Databricks SQL SELECT over silver and gold tables.")],
        materialize: Annotated[
            Literal["table", "view"],
            Field(description="table: write the rows (refresh to update); view: stored SQL, always current."),
        ] = "table",
    ) -> ToolResult:
        """Create or replace a gold table or view from SQL over silver (and gold); the definition is stored
        with its lineage."""
        result = await call_service(
            gold.create_gold_table, services, caller.principal(), name, sql, materialize=materialize
        )
        return tool_result(result)

    @server.tool(
        tags={"write"},
        annotations=BUILD.model_copy(update={"title": "Refresh a gold table"}),
        output_schema=output_schema(gold.GoldResult),
    )
    async def refresh_gold_table(
        name: Annotated[str, Field(description="The gold table's name (with or without 'gold.').")],
    ) -> ToolResult:
        """Rebuild a gold table from its stored definition (a view is only re-checked: it is always current)."""
        result = await call_service(gold.refresh_gold_table, services, caller.principal(), name)
        return tool_result(result)

    @server.tool(
        tags={"read"},
        annotations=READ.model_copy(update={"title": "Lineage of a table"}),
        output_schema=output_schema(lineage.Lineage),
    )
    async def get_lineage(table_name: TABLE) -> ToolResult:
        """Upstream (files, sources, tables it is built from) and downstream (tables built from it), as a graph."""
        result = await call_service(lineage.get_lineage, services, caller.principal(), table_name)
        return tool_result(result)

    @server.tool(
        tags={"read"},
        annotations=READ.model_copy(update={"title": "Profile a table"}),
        output_schema=output_schema(profiling.TableProfile),
    )
    async def profile_table(table_name: TABLE) -> ToolResult:
        """Per column: type, null share, distinct count (approximate on large tables), min/max, top values
        (sampled on large tables), likely keys and likely personal data, found by content."""
        result = await call_service(profiling.profile_table, services, caller.principal(), table_name)
        return tool_result(result)

    @server.tool(
        tags={"manage"},
        annotations=ToolAnnotations(
            title="Mask personal data",
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=False,
        ),
    )
    async def set_mask_pii(
        enabled: Annotated[bool, Field(description="true: mask personal data in every result and preview.")],
    ) -> dict[str, bool]:
        """Turn the tenant setting mask_pii on or off (admins). When on, columns whose values look like
        personal data (emails, phones, national ids, names), or that a profile flagged, are masked in every
        query result and preview."""
        return {"mask_pii": await call_service(pii.set_mask_pii, services, caller.principal(), enabled)}
