"""Who is asking, and the names they may touch.

A :class:`Principal` is built by authentication (an API key today) and handed to every service
function. Nothing takes a tenant id from a tool argument or a request body.

Identifiers (catalog, schema, table, column, volume) are checked here and only here: lower-case
letters, digits and underscores, starting with a letter, at most 128 characters. Anything emitted
into SQL is quoted as well; the check keeps names portable between the local engine and Unity
Catalog and keeps them safe as folder names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from servicetsunami.errors import InvalidIdentifier, PermissionDenied
from servicetsunami.toolsets import ToolSet

IDENTIFIER_RE = re.compile(r"^[a-z][a-z0-9_]{0,127}$")
LAYERS = ("bronze", "silver", "gold")
LANDING_VOLUME = "landing"


class Role(StrEnum):
    ADMIN = "admin"
    ENGINEER = "engineer"
    ANALYST = "analyst"


class Scope(StrEnum):
    READ = "read"  # list, describe, query
    WRITE = "write"  # ingest, transform, drop
    MANAGE = "manage"  # keys, connections, jobs


ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.ADMIN: frozenset({Scope.READ, Scope.WRITE, Scope.MANAGE}),
    Role.ENGINEER: frozenset({Scope.READ, Scope.WRITE}),
    Role.ANALYST: frozenset({Scope.READ}),
}
_BY_STRENGTH = sorted(ROLE_SCOPES, key=lambda role: -len(ROLE_SCOPES[role]))


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: one tenant, one role."""

    tenant_id: str
    tenant_slug: str
    catalog: str
    subject: str
    role: Role
    # The role's scopes (ROLE_SCOPES), or fewer for an OAuth token granted fewer.
    scopes: frozenset[Scope] = field(default_factory=frozenset)
    # The API key's own tool set (``tsunami keys create --preset``); None: the role's tools.
    tools: ToolSet | None = None

    def can(self, scope: Scope) -> bool:
        return scope in self.scopes

    @property
    def run_role(self) -> Role:
        """The role a run or job started by this caller acts as later, when it is rebuilt from the
        stored role: its own, or for an OAuth token granted fewer scopes the strongest role whose
        every scope the token has, so the run never does more than the caller may now. A token whose
        scopes fit no role (``write`` without ``read``) starts nothing that runs later."""
        if ROLE_SCOPES[self.role] <= self.scopes:
            return self.role
        for role in _BY_STRENGTH:
            if ROLE_SCOPES[role] <= self.scopes:
                return role
        raise PermissionDenied(
            "this app was granted scopes no role has on its own; connect it again and allow the 'read' scope"
        )

    def require(self, scope: Scope) -> None:
        if scope in self.scopes:
            return
        if scope in ROLE_SCOPES[self.role]:  # narrowed below its role: an app granted fewer OAuth scopes
            raise PermissionDenied(
                f"this app was not granted the '{scope.value}' permission; connect it again and allow the "
                f"'{scope.value}' scope to let it do this"
            )
        raise PermissionDenied(f"the {self.role.value} role may not do this (needs the '{scope.value}' permission)")


def principal_for(
    *,
    tenant_id: str,
    tenant_slug: str,
    subject: str,
    role: Role | str,
    catalog_prefix: str,
    tools: ToolSet | None = None,
) -> Principal:
    role = Role(role)
    return Principal(
        tenant_id=tenant_id,
        tenant_slug=tenant_slug,
        catalog=catalog_name(tenant_slug, prefix=catalog_prefix),
        subject=subject,
        role=role,
        scopes=ROLE_SCOPES[role],
        tools=tools,
    )


def check_identifier(name: str, /, *, what: str = "name") -> str:
    """Return ``name`` if it is a valid identifier, else raise :class:`InvalidIdentifier`."""
    if not isinstance(name, str) or not IDENTIFIER_RE.fullmatch(name):
        raise InvalidIdentifier(
            f"{what} {name!r} is not valid: use lower-case letters, digits and underscores, "
            "starting with a letter (at most 128 characters)"
        )
    return name


def check_slug(slug: str, /) -> str:
    """Tenant slugs follow identifier rules but are shorter, so catalog names stay readable."""
    check_identifier(slug, what="tenant slug")
    if len(slug) > 48:
        raise InvalidIdentifier(f"tenant slug {slug!r} is longer than 48 characters")
    return slug


def catalog_name(tenant_slug: str, /, *, prefix: str) -> str:
    return check_identifier(f"{prefix}{check_slug(tenant_slug)}", what="catalog")


@dataclass(frozen=True, slots=True, order=True)
class TableRef:
    """A fully qualified table name ``catalog.schema.name``; every part a checked identifier."""

    catalog: str
    schema: str
    name: str

    def __post_init__(self) -> None:
        check_identifier(self.catalog, what="catalog")
        check_identifier(self.schema, what="schema")
        check_identifier(self.name, what="table name")

    def __str__(self) -> str:
        return f"{self.catalog}.{self.schema}.{self.name}"

    @property
    def quoted(self) -> str:
        return f'"{self.catalog}"."{self.schema}"."{self.name}"'


def parse_table_name(name: str, /, *, catalog: str, default_schema: str = "bronze") -> TableRef:
    """Resolve ``name``, ``schema.name`` or ``catalog.schema.name`` inside ``catalog``.

    A three-part name that points at another catalog is refused: tenants see only their own.
    """
    parts = [p.strip().strip('`"').lower() for p in str(name).split(".")]
    if len(parts) == 1:
        return TableRef(catalog, default_schema, parts[0])
    if len(parts) == 2:
        return TableRef(catalog, parts[0], parts[1])
    if len(parts) == 3:
        if parts[0] != catalog:
            raise PermissionDenied(f"catalog {parts[0]!r} is not yours; your catalog is {catalog!r}")
        return TableRef(catalog, parts[1], parts[2])
    raise InvalidIdentifier(f"table name {name!r} has too many parts; use schema.table")
