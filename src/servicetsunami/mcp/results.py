"""Tool results: our pydantic models as MCP structured content plus the same JSON as text.

Models are dumped by alias (``TableInfo.schema_`` is ``schema`` on the wire) and each tool publishes
the matching output schema, so clients can validate ``structuredContent``.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from fastmcp.tools.base import ToolResult
from pydantic import BaseModel, Field

from servicetsunami.services.models import TableInfo


class TableList(BaseModel):
    """What ``list_tables`` returns: an object, as MCP structured content must be."""

    tables: list[TableInfo] = Field(description="Tables in your catalog, by schema then name")


@functools.cache
def output_schema(model: type[BaseModel], /) -> dict[str, Any]:
    """``model``'s JSON schema as a tool's output schema (made once per model: every build of the
    server publishes the same; read only)."""
    return model.model_json_schema(mode="serialization", by_alias=True)


def tool_result(model: BaseModel, /) -> ToolResult:
    data = model.model_dump(mode="json", by_alias=True)
    return ToolResult(content=json.dumps(data, ensure_ascii=False), structured_content=data)


def resource_json(model: BaseModel, /) -> str:
    return model.model_dump_json(by_alias=True)
