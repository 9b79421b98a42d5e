"""Users of the caller's tenant."""

from __future__ import annotations

from pydantic import BaseModel, Field

from servicetsunami.services.identity.users import UserPublic
from servicetsunami.tenancy import Role

__all__ = ["UserCreate", "UserPublic", "UserUpdate"]


class UserCreate(BaseModel):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024, json_schema_extra={"writeOnly": True})
    role: Role = Role.ANALYST
    name: str = Field("", max_length=200)


class UserUpdate(BaseModel):
    """Only the fields sent are changed."""

    role: Role | None = None
    name: str | None = Field(None, max_length=200)
    active: bool | None = Field(None, description="false disables the user and ends their refresh tokens")
    password: str | None = Field(None, max_length=1024, json_schema_extra={"writeOnly": True})
