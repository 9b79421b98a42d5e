"""OAuth clients of the MCP door, the grants users give them, and the grants' authorization codes
and refresh tokens. Codes, refresh tokens and client secrets are kept as SHA-256 hashes only; the
rules (single use, rotation, replay) live in :mod:`servicetsunami.services.identity.oauth`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from servicetsunami.errors import NotFound
from servicetsunami.store.models import OAuthClient, OAuthCode, OAuthGrant, OAuthRefreshToken, User
from servicetsunami.store.repositories._session import touch_last_used


def save_client(
    session: Session,
    /,
    *,
    client_id: str,
    source: str,
    name: str,
    secret_hash: str | None,
    info: dict[str, Any],
    fetched_at: datetime | None = None,
) -> OAuthClient:
    """Insert the client, or replace what is known of it (a metadata document read again)."""
    client = session.get(OAuthClient, client_id)
    if client is None:
        client = OAuthClient(id=client_id, source=source)
        session.add(client)
    client.name = name
    client.secret_hash = secret_hash
    client.info = info
    client.fetched_at = fetched_at
    session.flush()
    return client


def get_client(session: Session, client_id: str, /) -> OAuthClient | None:
    return session.get(OAuthClient, client_id)


def create_grant(
    session: Session, /, *, tenant_id: str, user_id: str, client_id: str, resource: str, scopes: list[str]
) -> OAuthGrant:
    grant = OAuthGrant(tenant_id=tenant_id, user_id=user_id, client_id=client_id, resource=resource, scopes=scopes)
    session.add(grant)
    session.flush()
    return grant


def get_grant(session: Session, grant_id: str, /) -> OAuthGrant | None:
    return session.get(OAuthGrant, grant_id)


def get_tenant_grant(session: Session, grant_id: str, /, *, tenant_id: str) -> OAuthGrant:
    grant = session.scalar(select(OAuthGrant).where(OAuthGrant.id == grant_id, OAuthGrant.tenant_id == tenant_id))
    if grant is None:
        raise NotFound("no such OAuth grant")
    return grant


def list_grants(session: Session, /, *, tenant_id: str, limit: int = 200) -> list[tuple[OAuthGrant, OAuthClient, User]]:
    """The tenant's grants, newest first, with their client and user."""
    rows = session.execute(
        select(OAuthGrant, OAuthClient, User)
        .join(OAuthClient, OAuthClient.id == OAuthGrant.client_id)
        .join(User, User.id == OAuthGrant.user_id)
        .where(OAuthGrant.tenant_id == tenant_id)
        .order_by(OAuthGrant.created_at.desc(), OAuthGrant.id)
        .limit(limit)
    )
    return [(row[0], row[1], row[2]) for row in rows]


def revoke_grant(session: Session, grant: OAuthGrant, /, *, now: datetime) -> None:
    """End the grant and every refresh token of it (its access tokens stop at their next use)."""
    if grant.revoked_at is None:
        grant.revoked_at = now
    session.execute(
        update(OAuthRefreshToken)
        .where(OAuthRefreshToken.grant_id == grant.id, OAuthRefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    session.flush()


def touch_grant(session: Session, grant: OAuthGrant, /, *, now: datetime, min_interval: timedelta) -> None:
    if grant.last_used_at is None or grant.last_used_at < now - min_interval:
        grant.last_used_at = now
        session.flush()


def touch_grant_by_id(session: Session, grant_id: str, /, *, now: datetime, min_interval: timedelta) -> bool:
    """:func:`~._session.touch_last_used` of a grant (its tokens' use at ``/mcp``)."""
    return touch_last_used(session, OAuthGrant, grant_id, now=now, min_interval=min_interval)


def create_code(
    session: Session,
    /,
    *,
    grant_id: str,
    code_hash: str,
    code_challenge: str,
    redirect_uri: str,
    redirect_uri_explicit: bool,
    expires_at: datetime,
) -> OAuthCode:
    code = OAuthCode(
        grant_id=grant_id,
        code_hash=code_hash,
        code_challenge=code_challenge,
        redirect_uri=redirect_uri,
        redirect_uri_explicit=redirect_uri_explicit,
        expires_at=expires_at,
    )
    session.add(code)
    session.flush()
    return code


def get_code(session: Session, code_hash: str, /) -> tuple[OAuthCode, OAuthGrant] | None:
    row = session.execute(
        select(OAuthCode, OAuthGrant)
        .join(OAuthGrant, OAuthGrant.id == OAuthCode.grant_id)
        .where(OAuthCode.code_hash == code_hash)
    ).one_or_none()
    return None if row is None else (row[0], row[1])


def claim_code(session: Session, code_id: str, /, *, now: datetime) -> bool:
    """Mark the code used; False when it already was (by this or any other process)."""
    result = session.execute(
        update(OAuthCode).where(OAuthCode.id == code_id, OAuthCode.used_at.is_(None)).values(used_at=now)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def create_refresh_token(
    session: Session, /, *, grant_id: str, token_hash: str, expires_at: datetime
) -> OAuthRefreshToken:
    token = OAuthRefreshToken(grant_id=grant_id, token_hash=token_hash, expires_at=expires_at)
    session.add(token)
    session.flush()
    return token


def get_refresh_token(session: Session, token_hash: str, /) -> tuple[OAuthRefreshToken, OAuthGrant] | None:
    row = session.execute(
        select(OAuthRefreshToken, OAuthGrant)
        .join(OAuthGrant, OAuthGrant.id == OAuthRefreshToken.grant_id)
        .where(OAuthRefreshToken.token_hash == token_hash)
    ).one_or_none()
    return None if row is None else (row[0], row[1])
