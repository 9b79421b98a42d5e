"""REST API connection settings: a declarative description of an API (no code), validated.

One connection is one API: its ``base_url``, how to authenticate, and its ``resources`` (each a
stream): a path, query parameters, a record selector, a paginator, an optional incremental cursor and
primary key, and optionally a parent resource whose records fill the path (``/users/{id}/orders``).
Secrets (``token``, ``password``, ``api_key``, ``client_secret``) are top-level settings, stored
encrypted and never returned; ``auth`` says which one is used and how.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from servicetsunami.connectors.rest import jsonpath

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class NoAuth(BaseModel):
    type: Literal["none"] = "none"


class BearerAuth(BaseModel):
    type: Literal["bearer"] = "bearer"


class BasicAuth(BaseModel):
    type: Literal["basic"] = "basic"
    username: str = Field(min_length=1, max_length=256, description="User name; the password is the secret `password`")


class ApiKeyAuth(BaseModel):
    type: Literal["api_key"] = "api_key"
    name: str = Field(
        min_length=1, max_length=128, description="Header or query parameter carrying the secret `api_key`"
    )
    location: Literal["header", "query"] = Field("header", description="Where the key goes")


class OAuth2ClientCredentials(BaseModel):
    type: Literal["oauth2_client_credentials"] = "oauth2_client_credentials"
    token_url: str = Field(min_length=8, max_length=2048, description="The token endpoint (vetted like every URL)")
    client_id: str = Field(min_length=1, max_length=512, description="The client id; its secret is `client_secret`")
    scopes: list[str] = Field(default_factory=list, max_length=50, description="Scopes asked for")
    client_auth: Literal["body", "basic"] = Field(
        "body", description="Send the client id and secret in the form body or as HTTP basic auth"
    )

    @field_validator("token_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _check_url(value)


Auth = Annotated[NoAuth | BearerAuth | BasicAuth | ApiKeyAuth | OAuth2ClientCredentials, Field(discriminator="type")]


class NoPaginator(BaseModel):
    type: Literal["none"] = "none"


class PageNumberPaginator(BaseModel):
    type: Literal["page_number"] = "page_number"
    page_param: str = Field("page", max_length=128, description="Query parameter holding the page number")
    start: int = Field(1, ge=0, description="The first page's number")
    page_size_param: str | None = Field(None, max_length=128, description="Query parameter holding the page size")
    page_size: int | None = Field(None, ge=1, le=100_000)
    total_pages_path: str | None = Field(None, description="JSONPath of the page count in the body, if given")


class OffsetPaginator(BaseModel):
    type: Literal["offset"] = "offset"
    offset_param: str = Field("offset", max_length=128)
    limit_param: str = Field("limit", max_length=128)
    limit: int = Field(100, ge=1, le=100_000, description="Records per page")
    total_path: str | None = Field(None, description="JSONPath of the record count in the body, if given")


class CursorPaginator(BaseModel):
    type: Literal["cursor"] = "cursor"
    cursor_path: str = Field(description="JSONPath of the next page's cursor in the body; absent or null at the end")
    cursor_param: str = Field("cursor", max_length=128, description="Query parameter the cursor goes in")


class NextUrlPaginator(BaseModel):
    type: Literal["next_url"] = "next_url"
    next_url_path: str = Field("next", description="JSONPath of the next page's URL in the body")


class LinkHeaderPaginator(BaseModel):
    type: Literal["link_header"] = "link_header"
    rel: str = Field("next", max_length=32, description="The relation of the Link header to follow")


Paginator = Annotated[
    NoPaginator | PageNumberPaginator | OffsetPaginator | CursorPaginator | NextUrlPaginator | LinkHeaderPaginator,
    Field(discriminator="type"),
]


class Incremental(BaseModel):
    cursor_field: str = Field(min_length=1, max_length=128, description="The record field that grows")
    start_value: str | int | float | None = Field(None, description="Where the first sync starts")
    param: str | None = Field(
        None, max_length=128, description="Query parameter sent with the last synced cursor value (e.g. updated_since)"
    )


class Parent(BaseModel):
    resource: str = Field(description="The parent resource's name")
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="Path placeholder -> parent record field; a placeholder not listed takes the field of its name",
    )


class Resource(BaseModel):
    name: str = Field(description="The stream's name: lower-case letters, digits, _")
    path: str = Field(min_length=1, max_length=2048, description="Path below base_url, e.g. /users/{id}/orders")
    params: dict[str, str | int | float | bool] = Field(default_factory=dict, description="Query parameters")
    record_selector: str = Field("$", description="JSONPath of the records in the body ($ = the body itself)")
    paginator: Paginator = Field(default_factory=NoPaginator)
    primary_key: list[str] = Field(default_factory=list, max_length=16)
    incremental: Incremental | None = None
    parent: Parent | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must be lower-case letters, digits and _, starting with a letter or _")
        return value

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        if "://" in value or value.startswith("//"):
            raise ValueError("must be a path below base_url, not a URL")
        return value

    @field_validator("record_selector")
    @classmethod
    def _selector(cls, value: str) -> str:
        return _check_path(value)

    @model_validator(mode="after")
    def _placeholders(self) -> Resource:
        names = set(_PLACEHOLDER.findall(self.path))
        if names and self.parent is None:
            raise ValueError(f"path placeholders {sorted(names)} need a parent resource")
        for path in (
            getattr(self.paginator, "cursor_path", None),
            getattr(self.paginator, "next_url_path", None),
            getattr(self.paginator, "total_pages_path", None),
            getattr(self.paginator, "total_path", None),
        ):
            if path is not None:
                _check_path(path)
        return self

    def placeholders(self) -> dict[str, str]:
        """Path placeholder -> the parent record's field filling it."""
        fields = self.parent.fields if self.parent else {}
        return {name: fields.get(name, name) for name in _PLACEHOLDER.findall(self.path)}


class RestConfig(BaseModel):
    base_url: str = Field(min_length=8, max_length=2048, description="http(s) URL every resource path is below")
    auth: Auth = Field(default_factory=NoAuth, description="none, bearer, basic, api_key, oauth2_client_credentials")
    token: SecretStr | None = Field(None, description="bearer: the token; stored encrypted, never returned")
    password: SecretStr | None = Field(None, description="basic: the password; stored encrypted, never returned")
    api_key: SecretStr | None = Field(None, description="api_key: the key; stored encrypted, never returned")
    client_secret: SecretStr | None = Field(
        None, description="oauth2_client_credentials: the client secret; stored encrypted, never returned"
    )
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers (not secret)")
    resources: list[Resource] = Field(min_length=1, max_length=200, description="The streams")
    nested: Literal["json", "struct"] = Field(
        "json", description="Nested objects and lists land as JSON text (json) or as structs and lists (struct)"
    )
    timeout_seconds: float = Field(30, gt=0, le=600, description="Per request")
    max_retries: int = Field(5, ge=0, le=20, description="Retries of a 429, 502, 503, 504 or a dropped connection")
    backoff_seconds: float = Field(1.0, ge=0, le=60, description="First wait between retries, doubling each time")
    max_wait_seconds: float = Field(60, ge=0, le=3600, description="Longest wait a Retry-After header may ask for")
    max_pages: int = Field(100_000, ge=1, le=10_000_000, description="Stop with an error past this many pages")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _check_url(value)

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name.lower() in ("authorization", "proxy-authorization", "cookie", "host"):
                raise ValueError(f"{name} cannot be set here; use auth (secrets are stored encrypted)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> RestConfig:
        names = [r.name for r in self.resources]
        if len(set(names)) != len(names):
            raise ValueError("resource names must be unique")
        by_name = {r.name: r for r in self.resources}
        for resource in self.resources:
            seen = {resource.name}
            parent = resource.parent
            while parent is not None:
                if parent.resource not in by_name:
                    raise ValueError(f"resource {resource.name}: parent {parent.resource!r} is not a resource")
                if parent.resource in seen:
                    raise ValueError(f"resource {resource.name}: its parents form a cycle")
                seen.add(parent.resource)
                parent = by_name[parent.resource].parent
        needed = {
            "bearer": "token",
            "basic": "password",
            "api_key": "api_key",
            "oauth2_client_credentials": "client_secret",
        }.get(self.auth.type)
        if needed and getattr(self, needed) is None:
            raise ValueError(f"auth {self.auth.type} needs the secret {needed}")
        return self

    def resource(self, name: str) -> Resource | None:
        return next((r for r in self.resources if r.name == name), None)

    def redacted(self) -> str:
        return f"rest:{self.base_url} ({self.auth.type})"

    def endpoint(self) -> tuple[str, int]:
        return host_port(self.base_url)


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def _check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials; use auth and the secrets")
    return value


def _check_path(value: str) -> str:
    try:
        jsonpath.parse(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a supported JSONPath ($, $.a.b, $.a[0], $.a[*], $['a b'])") from None
    return value
