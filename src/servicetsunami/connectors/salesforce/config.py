"""Salesforce connection settings: the org's My Domain URL, the connected app's OAuth2 credentials,
and which objects are streams.

OAuth2 is the client credentials flow (the connected app runs as its configured user) or a refresh
token (from the web server flow, done once outside the service). The secrets ``client_secret`` and
``refresh_token`` are stored encrypted and never returned. Tokens come from the org's own
``/services/oauth2/token`` on ``instance_url``, the one host this source reaches (vetted as every
source host is).
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

_OBJECT = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")
_VERSION = re.compile(r"^\d{2,3}\.\d$")


class SalesforceConfig(BaseModel):
    instance_url: str = Field(
        min_length=8, max_length=2048, description="The org's My Domain URL, e.g. https://acme.my.salesforce.com"
    )
    api_version: str = Field("62.0", description="REST API version, e.g. 62.0")
    auth: Literal["client_credentials", "refresh_token"] = Field(
        "client_credentials", description="OAuth2 flow: client_credentials, or refresh_token (with client_id)"
    )
    client_id: str = Field(min_length=1, max_length=512, description="The connected app's consumer key")
    client_secret: SecretStr | None = Field(
        None, description="The connected app's consumer secret; stored encrypted, never returned"
    )
    refresh_token: SecretStr | None = Field(
        None, description="refresh_token: the user's refresh token; stored encrypted, never returned"
    )
    objects: list[str] = Field(
        default_factory=list,
        max_length=500,
        description="Objects to offer as streams (e.g. Account, Opportunity, Invoice__c); empty: every queryable one",
    )
    include_deleted: bool = Field(
        False, description="Read with queryAll, so deleted and archived records land too (IsDeleted true)"
    )
    compound: Literal["struct", "json"] = Field(
        "struct", description="Address and location fields land as structs or as JSON text"
    )
    timeout_seconds: float = Field(60, gt=0, le=600, description="Per request")
    max_retries: int = Field(5, ge=0, le=20, description="Retries of a 429, 502, 503, 504 or a dropped connection")
    backoff_seconds: float = Field(1.0, ge=0, le=60, description="First wait between retries, doubling each time")

    @field_validator("instance_url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be the org's https:// URL")
        if parts.username or parts.password or parts.query or parts.path.strip("/"):
            raise ValueError("must be the org's URL alone (https://acme.my.salesforce.com), no path or credentials")
        return value.rstrip("/")

    @field_validator("api_version")
    @classmethod
    def _version(cls, value: str) -> str:
        value = value.removeprefix("v")
        if not _VERSION.match(value):
            raise ValueError("must look like 62.0")
        return value

    @field_validator("objects")
    @classmethod
    def _objects(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _OBJECT.match(name):
                raise ValueError(f"{name!r} is not an object's API name")
        return value

    @model_validator(mode="after")
    def _secrets(self) -> SalesforceConfig:
        if self.auth == "client_credentials" and self.client_secret is None:
            raise ValueError("auth client_credentials needs the secret client_secret")
        if self.auth == "refresh_token" and self.refresh_token is None:
            raise ValueError("auth refresh_token needs the secret refresh_token")
        return self

    def endpoint(self) -> tuple[str, int]:
        parts = urlsplit(self.instance_url)  # not connectors.http: listing kinds loads no HTTP client
        return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)

    def api(self, tail: str) -> str:
        return f"{self.instance_url}/services/data/v{self.api_version}{tail}"
