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
