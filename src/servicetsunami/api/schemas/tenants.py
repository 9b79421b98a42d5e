"""Tenants (created by a platform admin)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from servicetsunami.services.identity.tenants import TenantPublic

__all__ = ["TenantCreate", "TenantPublic"]


class TenantCreate(BaseModel):
    slug: str = Field(min_length=1, max_length=48, description="Lower-case letters, digits, underscores")
    name: str | None = Field(None, max_length=200)
    admin_email: str | None = Field(None, max_length=320, description="Also create this tenant's first admin user")
    admin_password: str | None = Field(None, max_length=1024, json_schema_extra={"writeOnly": True})
