"""API keys of the caller's tenant."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, Field

from servicetsunami.services.identity.tenants import ApiKeyPublic, CreatedKey
from servicetsunami.tenancy import Role

__all__ = ["ApiKeyCreate", "ApiKeyCreated", "ApiKeyPublic"]

ApiKeyCreated = CreatedKey


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    role: Role = Role.ANALYST
    expires_at: AwareDatetime | None = Field(None, description="With a time zone, e.g. 2027-01-01T00:00:00Z")
    tool_preset: str | None = Field(
        None, description="Show this key only a preset's MCP tools: minimal, analyst, engineer or admin"
    )
    tools: list[str] | None = Field(
        None, max_length=200, description="MCP tools this key sees (besides its preset's, if it has one)"
    )
