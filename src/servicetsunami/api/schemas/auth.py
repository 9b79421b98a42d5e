"""Logging in and refreshing."""

from __future__ import annotations

from pydantic import BaseModel, Field

from servicetsunami.services.identity.users import Me as MePublic
from servicetsunami.services.identity.users import TokenPair as TokenPublic

__all__ = ["LoginCreate", "MePublic", "RefreshCreate", "TokenPublic"]


class LoginCreate(BaseModel):
    email: str = Field(min_length=3, max_length=320, examples=["ada@example.com"])
    password: str = Field(min_length=1, max_length=1024, json_schema_extra={"writeOnly": True})


class RefreshCreate(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=512, json_schema_extra={"writeOnly": True})
