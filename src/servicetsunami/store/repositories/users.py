"""Users of a tenant and their refresh tokens (see the package docstring for the conventions)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from servicetsunami.errors import Conflict, InvalidInput, NotFound
from servicetsunami.store.db import flush_or_conflict
from servicetsunami.store.models import ROLES, RefreshToken, Tenant, User, utcnow
from servicetsunami.store.repositories._keyset import bytewise, keyset


def create_user(
    session: Session,
    /,
    *,
    tenant_id: str,
    email: str,
    name: str,
    password_hash: str,
    role: str,
    is_platform_admin: bool = False,
    meta: dict[str, Any] | None = None,
) -> User:
    """Insert a user; :class:`Conflict` if the e-mail address is taken (in any tenant)."""
    if role not in ROLES:
        raise InvalidInput(f"role {role!r} is not one of {', '.join(ROLES)}")
    if session.scalar(select(exists().where(User.email == email))):
        raise Conflict("a user with this e-mail address already exists")
    user = User(
        tenant_id=tenant_id,
        email=email,
        name=name,
        password_hash=password_hash,
        role=role,
        is_platform_admin=is_platform_admin,
        meta=dict(meta or {}),
    )
    session.add(user)
    flush_or_conflict(session, "a user with this e-mail address already exists")
    return user


def find_user_by_email(session: Session, email: str, /) -> tuple[User, Tenant] | None:
    """The user with this address and their tenant, across tenants (for logging in)."""
    row = session.execute(
        select(User, Tenant).join(Tenant, Tenant.id == User.tenant_id).where(User.email == email)
    ).first()
    return None if row is None else (row[0], row[1])


def get_user(session: Session, user_id: str, /, *, tenant_id: str) -> User:
    user = session.scalar(select(User).where(User.id == user_id, User.tenant_id == tenant_id))
    if user is None:
        raise NotFound("user not found")
    return user


def list_users(
    session: Session, /, *, tenant_id: str, after: tuple[str, str] | None = None, limit: int | None = None
) -> list[User]:
    """By ``(email, id)``: the tenant's users after ``after``, at most ``limit + 1``."""
    stmt = select(User).where(User.tenant_id == tenant_id)
    return list(session.scalars(keyset(stmt, (bytewise(User.email), bytewise(User.id)), after=after, limit=limit)))


# ---------------------------------------------------------------------------------------------
# refresh tokens


def create_refresh_token(
    session: Session, /, *, tenant_id: str, user_id: str, family_id: str, token_hash: str, expires_at: datetime
) -> RefreshToken:
    token = RefreshToken(
        tenant_id=tenant_id, user_id=user_id, family_id=family_id, token_hash=token_hash, expires_at=expires_at
    )
    session.add(token)
    flush_or_conflict(session, "refresh token collision; try again")
    return token


def get_refresh_token_for_update(session: Session, token_hash: str, /) -> RefreshToken | None:
    """The token row, locked against a concurrent refresh on PostgreSQL (SQLite serialises writers)."""
    return session.scalar(select(RefreshToken).where(RefreshToken.token_hash == token_hash).with_for_update())


def revoke_refresh_family(session: Session, family_id: str, /, *, now: datetime | None = None) -> int:
    result = session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def revoke_user_refresh_tokens(session: Session, user_id: str, /, *, now: datetime | None = None) -> int:
    result = session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
