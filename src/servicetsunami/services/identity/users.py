"""People and their credentials: users, logins, rotating refresh tokens, and the principal-facing
wrappers around tenants and API keys (:mod:`servicetsunami.services.identity.tenants` holds the operator
functions these call).

Rules that live here and nowhere else:

- a user belongs to one tenant; ``manage`` (admin) creates users and keys inside the caller's
  tenant only; creating tenants needs a platform admin;
- a login answers the same ``AuthError`` for an unknown address, a wrong password and a disabled
  user, after the same argon2 work;
- a refresh token is used once: using it revokes it and returns the next one of its family; using
  a revoked one again revokes the whole family (someone replayed a stolen token);
- passwords and token plaintexts are never stored, logged or echoed.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from servicetsunami.errors import AuthError, Conflict, InvalidInput, NotFound, PermissionDenied
from servicetsunami.security import passwords, tokens
from servicetsunami.services.identity import tenants
from servicetsunami.store.models import RefreshToken, Tenant, User, new_id, utcnow
from servicetsunami.store.repositories import audit as audit_repo
from servicetsunami.store.repositories import tenants as tenants_repo
from servicetsunami.store.repositories import users as users_repo
from servicetsunami.tenancy import Principal, Role, Scope

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

logger = logging.getLogger(__name__)

INVALID_LOGIN_MESSAGE = "wrong e-mail address or password"
INVALID_REFRESH_MESSAGE = "invalid, expired or already used refresh token; log in again"
_EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")


class UserPublic(BaseModel):
    id: str
    email: str
    name: str
    role: Role
    tenant_id: str
    tenant_slug: str
    is_platform_admin: bool
    created_at: datetime
    last_login_at: datetime | None = None
    active: bool


class TokenPair(BaseModel):
    access_token: str = Field(description="Send as 'Authorization: Bearer <access_token>'")
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires")
    refresh_token: str = Field(description="Use once with POST /auth/refresh; it is replaced on every use")
    refresh_expires_in: int


class Me(BaseModel):
    subject: str
    tenant_id: str
    tenant_slug: str
    catalog: str
    role: Role
    scopes: list[str]
    user: UserPublic | None = Field(None, description="The user, when the caller logged in (not an API key)")


def normalise_email(email: str, /) -> str:
    cleaned = email.strip().lower() if isinstance(email, str) else ""
    if not _EMAIL_RE.fullmatch(cleaned):
        raise InvalidInput("email must look like name@example.com")
    return cleaned


def create_user(
    svc: Services,
    *,
    tenant_slug: str,
    email: str,
    password: str,
    role: Role | str = Role.ANALYST,
    name: str = "",
    is_platform_admin: bool = False,
    actor: str = "operator",
) -> UserPublic:
    """Operator act (CLI): create a user in ``tenant_slug``."""
    address = normalise_email(email)
    password_hash = passwords.hash_password(password)
    checked_role = _role(role)
    with svc.store.session(write_lock=True) as session:  # reads, then writes: lock first (db.py)
        tenant = tenants_repo.get_tenant_by_slug(session, tenant_slug)
        user = users_repo.create_user(
            session,
            tenant_id=tenant.id,
            email=address,
            name=_display_name(name),
            password_hash=password_hash,
            role=checked_role.value,
            is_platform_admin=is_platform_admin,
        )
        audit_repo.record_audit(
            session,
            action="user.create",
            subject=actor,
            tenant_id=tenant.id,
            target=f"user:{user.id}",
            meta={"role": checked_role.value, "platform_admin": is_platform_admin},
        )
        return _user_public(user, tenant)


def create_user_in_tenant(
    svc: Services, principal: Principal, *, email: str, password: str, role: Role | str, name: str = ""
) -> UserPublic:
    """An admin adds a user to their own tenant (never a platform admin)."""
    principal.require(Scope.MANAGE)
    return create_user(
        svc, tenant_slug=principal.tenant_slug, email=email, password=password, role=role, name=name,
        actor=principal.subject,
    )  # fmt: skip


def list_users(
    svc: Services, principal: Principal, *, after: tuple[str, str] | None = None, limit: int | None = None
) -> list[UserPublic]:
    """The tenant's users by ``(email, id)``; with ``after`` and ``limit``, one page of them plus
    the next user if there is one (see :mod:`servicetsunami.api.pagination`)."""
    principal.require(Scope.MANAGE)
    with svc.store.session() as session:
        tenant = tenants_repo.get_tenant(session, principal.tenant_id)
        rows = users_repo.list_users(session, tenant_id=principal.tenant_id, after=after, limit=limit)
        return [_user_public(u, tenant) for u in rows]


def get_user(svc: Services, principal: Principal, user_id: str, /) -> UserPublic:
    if _user_id_of(principal) != user_id:
        principal.require(Scope.MANAGE)
    with svc.store.session() as session:
        tenant = tenants_repo.get_tenant(session, principal.tenant_id)
        return _user_public(users_repo.get_user(session, user_id, tenant_id=principal.tenant_id), tenant)


def update_user(
    svc: Services,
    principal: Principal,
    user_id: str,
    /,
    *,
    role: Role | str | None = None,
    name: str | None = None,
    active: bool | None = None,
    password: str | None = None,
) -> UserPublic:
    """Change a user of the caller's tenant (admins; anyone may change their own name and password).

    Disabling a user or changing their password ends their refresh tokens; disabling them or changing
    their role also ends their access tokens at the next request (see
    :func:`servicetsunami.security.tokens.require_current_user`)."""
    own = _user_id_of(principal) == user_id
    if not own or role is not None or active is not None:
        principal.require(Scope.MANAGE)
    if own and (active is False or (role is not None and _role(role) != principal.role)):
        raise InvalidInput("you cannot disable yourself or change your own role; ask another admin")
    new_hash = passwords.hash_password(password) if password is not None else None
    with svc.store.session(write_lock=True) as session:
        tenant = tenants_repo.get_tenant(session, principal.tenant_id)
        user = users_repo.get_user(session, user_id, tenant_id=principal.tenant_id)
        if role is not None:
            user.role = _role(role).value
        if name is not None:
            user.name = _display_name(name)
        if active is not None:
            user.disabled_at = None if active else (user.disabled_at or utcnow())
        if new_hash is not None:
            user.password_hash = new_hash
        if new_hash is not None or active is False:
            users_repo.revoke_user_refresh_tokens(session, user.id)
        session.flush()
        audit_repo.record_audit(
            session,
            action="user.update",
            subject=principal.subject,
            tenant_id=tenant.id,
            target=f"user:{user.id}",
            meta={"role": role is not None, "active": active, "password": password is not None},
        )
        return _user_public(user, tenant)


def login(svc: Services, *, email: str, password: str) -> TokenPair:
    """Check the password and return an access token and a new refresh token family."""
    try:
        address = normalise_email(email)
    except InvalidInput:
        passwords.burn_verify(password if isinstance(password, str) else "")
        raise AuthError(INVALID_LOGIN_MESSAGE) from None
    with svc.store.session() as session:
        found = users_repo.find_user_by_email(session, address)
        account = None if found is None else (found[0].id, found[1].id, found[0].password_hash, found[0].disabled_at)
    if account is None:
        passwords.burn_verify(password)
        raise AuthError(INVALID_LOGIN_MESSAGE)
    user_id, tenant_id, password_hash, disabled_at = account
    # The slow hash runs outside any transaction, and the writes take the write lock up front: a
    # read transaction upgraded to a write fails at once on SQLite when another login wrote first.
    matches, needs_rehash = passwords.verify_password(password_hash, password)
    if not matches or disabled_at is not None:
        raise AuthError(INVALID_LOGIN_MESSAGE)
    new_hash = passwords.hash_password(password) if needs_rehash else None
    with svc.store.session(write_lock=True) as session:
        user = users_repo.get_user(session, user_id, tenant_id=tenant_id)
        tenant = tenants_repo.get_tenant(session, tenant_id)
        if new_hash is not None:
            user.password_hash = new_hash
        user.last_login_at = utcnow()
        pair = _issue(svc, session, user, tenant, family_id=new_id())
        audit_repo.record_audit(session, action="user.login", subject=f"user:{user.id}", tenant_id=tenant.id)
    return pair


def refresh(svc: Services, *, refresh_token: str) -> TokenPair:
    """Exchange a refresh token for a new pair (see the module docstring for replays)."""
    if not isinstance(refresh_token, str) or not refresh_token.startswith(f"{tokens.REFRESH_SCHEME}_"):
        raise AuthError(INVALID_REFRESH_MESSAGE)
    token_hash = tokens.hash_refresh_token(refresh_token)
    replayed = False
    with svc.store.session(write_lock=True) as session:
        row = users_repo.get_refresh_token_for_update(session, token_hash)
        if row is None:
            raise AuthError(INVALID_REFRESH_MESSAGE)
        now = utcnow()
        if row.revoked_at is not None:
            users_repo.revoke_refresh_family(session, row.family_id, now=now)
            replayed = True
        elif row.expires_at <= now:
            raise AuthError(INVALID_REFRESH_MESSAGE)
        else:
            user = users_repo.get_user(session, row.user_id, tenant_id=row.tenant_id)
            if user.disabled_at is not None:
                raise AuthError(INVALID_REFRESH_MESSAGE)
            tenant = tenants_repo.get_tenant(session, row.tenant_id)
            row.revoked_at = now
            pair = _issue(svc, session, user, tenant, family_id=row.family_id, replaces=row)
    if replayed:  # committed: the family stays revoked although the request fails
        logger.warning("a used refresh token was presented again; its family is revoked")
        raise AuthError(INVALID_REFRESH_MESSAGE)
    return pair


def me(svc: Services, principal: Principal) -> Me:
    user = None
    user_id = _user_id_of(principal)
    if user_id is not None:
        with contextlib.suppress(NotFound):
            user = get_user(svc, principal, user_id)
    return Me(
        subject=principal.subject,
        tenant_id=principal.tenant_id,
        tenant_slug=principal.tenant_slug,
        catalog=principal.catalog,
        role=principal.role,
        scopes=sorted(s.value for s in principal.scopes),
        user=user,
    )


def create_tenant(
    svc: Services,
    principal: Principal,
    slug: str,
    *,
    name: str | None = None,
    admin_email: str | None = None,
    admin_password: str | None = None,
) -> tenants.TenantPublic:
    """A platform admin creates a tenant, its catalog and optionally its first admin user."""
    require_platform_admin(svc, principal)
    if (admin_email is None) != (admin_password is None):
        raise InvalidInput("give admin_email and admin_password together, or neither")
    if admin_email is not None and admin_password is not None:
        passwords.check_password_rules(admin_password)
        address = normalise_email(admin_email)
        with svc.store.session() as session:
            if users_repo.find_user_by_email(session, address) is not None:
                raise Conflict("a user with this e-mail address already exists; choose another admin_email")
    created = tenants.create_tenant(svc.store, slug, name=name, actor=principal.subject)
    svc.engine.ensure_catalog(svc.settings.catalog_prefix + created.slug)
    if admin_email is not None and admin_password is not None:
        create_user(
            svc, tenant_slug=created.slug, email=admin_email, password=admin_password, role=Role.ADMIN,
            actor=principal.subject,
        )  # fmt: skip
    return created


def require_platform_admin(svc: Services, principal: Principal) -> None:
    user_id = _user_id_of(principal)
    if user_id is not None:
        with svc.store.session() as session, contextlib.suppress(NotFound):
            if users_repo.get_user(session, user_id, tenant_id=principal.tenant_id).is_platform_admin:
                return
    raise PermissionDenied("only a platform admin may do this (see `tsunami users create --platform-admin`)")


def create_api_key(
    svc: Services,
    principal: Principal,
    *,
    name: str,
    role: Role | str,
    expires_at: datetime | None = None,
    tool_preset: str | None = None,
    tools: Sequence[str] | None = None,
) -> tenants.CreatedKey:
    principal.require(Scope.MANAGE)
    return tenants.create_api_key(
        svc.store, tenant_slug=principal.tenant_slug, name=name, role=role, expires_at=expires_at,
        actor=principal.subject, tool_preset=tool_preset, tools=tools,
    )  # fmt: skip


def list_api_keys(
    svc: Services, principal: Principal, *, after: tuple[datetime, str] | None = None, limit: int | None = None
) -> list[tenants.ApiKeyPublic]:
    principal.require(Scope.MANAGE)
    return tenants.list_api_keys(svc.store, tenant_slug=principal.tenant_slug, after=after, limit=limit)


def revoke_api_key(svc: Services, principal: Principal, key_id: str, /) -> tenants.ApiKeyPublic:
    principal.require(Scope.MANAGE)
    return tenants.revoke_api_key(
        svc.store, tenant_slug=principal.tenant_slug, key_id_or_prefix=key_id, actor=principal.subject
    )


def ensure_tenant(svc: Services, slug: str, /) -> None:
    """Create ``slug`` and its catalog if missing (the CLI's first user of a fresh install)."""
    with contextlib.suppress(Conflict):
        tenants.create_tenant(svc.store, slug, actor="operator")
    svc.engine.ensure_catalog(svc.settings.catalog_prefix + slug)


# -- internals ------------------------------------------------------------------------------------


def _issue(
    svc: Services, session: Session, user: User, tenant: Tenant, *, family_id: str, replaces: RefreshToken | None = None
) -> TokenPair:
    signer = svc.tokens
    if signer is None:
        raise AuthError("logins are not available: this server has no token signing key")
    access, expires_in = signer.issue(user_id=user.id, tenant_id=tenant.id, tenant_slug=tenant.slug, role=user.role)
    plaintext, token_hash = tokens.new_refresh_token()
    lifetime = svc.settings.auth.refresh_token_seconds
    row = users_repo.create_refresh_token(
        session,
        tenant_id=tenant.id,
        user_id=user.id,
        family_id=family_id,
        token_hash=token_hash,
        expires_at=utcnow() + timedelta(seconds=lifetime),
    )
    if replaces is not None:
        replaces.replaced_by = row.id
    session.flush()
    return TokenPair(access_token=access, expires_in=expires_in, refresh_token=plaintext, refresh_expires_in=lifetime)


def _user_id_of(principal: Principal) -> str | None:
    kind, _, ident = principal.subject.partition(":")
    return ident if kind == "user" and ident else None


def _role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InvalidInput(f"role {role!r} is not one of {', '.join(r.value for r in Role)}") from None


def _display_name(name: str) -> str:
    cleaned = name.strip() if isinstance(name, str) else ""
    if len(cleaned) > 200:
        raise InvalidInput("name must be at most 200 characters")
    return cleaned


def _user_public(user: User, tenant: Tenant) -> UserPublic:
    return UserPublic(
        id=user.id,
        email=user.email,
        name=user.name,
        role=Role(user.role),
        tenant_id=tenant.id,
        tenant_slug=tenant.slug,
        is_platform_admin=user.is_platform_admin,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
        active=user.disabled_at is None,
    )
