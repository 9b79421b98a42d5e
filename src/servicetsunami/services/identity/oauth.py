"""OAuth grants: a user lets an MCP client (Claude, an IDE, a script) act for them at ``/mcp``.

The protocol (RFC 6749 with PKCE, RFC 7591 registration, RFC 7009 revocation) is spoken by the MCP
SDK's handlers in :mod:`servicetsunami.api.oauth`; the rules live here and nowhere else:

- a client registers itself (redirect URIs must be https, or http on ``localhost``/``127.0.0.1``
  for a native app; no fragment) or is described by a client ID metadata document; its secret, if
  it asked for one, is kept as a SHA-256 only; ``/authorize`` takes a registered redirect URI, or
  one on a loopback host with another port (:func:`redirect_uri_registered`);
- a **grant** is made when a signed-in user presses Allow on the consent page: the client then acts
  as that user, in the user's tenant, with the **scopes** it asked for that the user's role has
  (:func:`effective_scopes`), never more; only a user (not an API key) can consent;
- the scopes are the role model's permissions (:class:`~servicetsunami.tenancy.Scope`): ``read``
  (list, describe, query), ``write`` (load and change data) and ``manage`` (keys, connections,
  jobs); ``offline_access`` names the refresh token every grant gets anyway. A request naming no
  scope asks for the client's registered ones, else for all three; any other scope is refused;
- an authorization code is random (256 bits), kept hashed, lives ``auth.oauth_code_seconds``, and
  is used once: a second use revokes the grant (RFC 6749 section 4.1.2: the code leaked);
- access tokens are JWTs bound to the grant's resource (``<base>/mcp``) and name the grant, which
  ``/mcp`` checks on every request (:func:`servicetsunami.security.tokens.require_live_grant`);
- a refresh token is used once: using it revokes it and returns the next one; presenting a used one
  again revokes the grant;
- revoking a grant (its admin on the console, or the client at ``/revoke``) ends its refresh tokens
  at once and its access tokens at their next request;
- codes, refresh tokens and secrets are never stored in the clear, logged or echoed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from ipaddress import ip_address
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from servicetsunami.errors import AuthError, InvalidInput, PermissionDenied
from servicetsunami.security.tokens import LAST_USED_RESOLUTION
from servicetsunami.store.models import OAuthGrant, OAuthRefreshToken, utcnow
from servicetsunami.store.repositories import audit as audit_repo
from servicetsunami.store.repositories import oauth as oauth_repo
from servicetsunami.store.repositories import tenants as tenants_repo
from servicetsunami.store.repositories import users as users_repo
from servicetsunami.tenancy import ROLE_SCOPES, Principal, Role, Scope

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from servicetsunami.services.container import Services

logger = logging.getLogger(__name__)

CODE_PREFIX = "tsc_"
REFRESH_PREFIX = "tso_"
INVALID_GRANT_MESSAGE = "invalid, expired or already used authorization code or refresh token"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
CLIENT_NAME_MAX = 200
TOOL_SCOPES: tuple[str, ...] = tuple(scope.value for scope in Scope)  # read, write, manage
OFFLINE_ACCESS = "offline_access"
SCOPES_SUPPORTED: tuple[str, ...] = (*TOOL_SCOPES, OFFLINE_ACCESS)
SCOPE_DESCRIPTIONS: dict[str, str] = {
    Scope.READ.value: "see the tenant's tables and files and run queries",
    Scope.WRITE.value: "load, change and delete data",
    Scope.MANAGE.value: "manage keys, connections and jobs",
}


@dataclass(frozen=True, slots=True)
class ClientRecord:
    """A client as the authorization server knows it; ``info`` is its RFC 7591 record, no secret."""

    client_id: str
    name: str
    source: str
    secret_hash: str | None
    info: dict[str, Any]
    fetched_at: datetime | None = None

    def secret_matches(self, secret: str | None, /) -> bool:
        if self.secret_hash is None or not secret:
            return False
        return hmac.compare_digest(self.secret_hash, hash_secret(secret))


@dataclass(frozen=True, slots=True)
class PendingCode:
    """What ``/token`` checks an authorization code against."""

    client_id: str
    grant_id: str
    code_challenge: str
    redirect_uri: str
    redirect_uri_explicit: bool
    expires_at: float
    resource: str
    scopes: list[str]
    subject: str


@dataclass(frozen=True, slots=True)
class LiveRefreshToken:
    client_id: str
    grant_id: str
    scopes: list[str]
    expires_at: int
    resource: str
    subject: str


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access_token: str
    expires_in: int
    refresh_token: str
    scopes: list[str]


class GrantPublic(BaseModel):
    id: str
    client_id: str
    client_name: str
    user_email: str
    role: Role
    scopes: list[str] = Field(default_factory=list, description="What it may do: the granted scopes its role has")
    created_at: datetime
    last_used_at: datetime | None = None
    active: bool


def hash_secret(plaintext: str, /) -> str:
    """Hex SHA-256 (codes, refresh tokens and client secrets are 256-bit random: no KDF needed)."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def check_redirect_uri(uri: str, /) -> None:
    """``InvalidInput`` unless ``uri`` is https, or http on a loopback host (a native app's listener)."""
    try:
        parts = urlsplit(uri)
        host = (parts.hostname or "").rstrip(".")
    except ValueError:
        raise InvalidInput(f"redirect URI {uri!r} is not a URL") from None
    if parts.fragment:
        raise InvalidInput("a redirect URI must not have a fragment (#...)")
    if not host:
        raise InvalidInput(f"redirect URI {uri!r} has no host")
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and (host in LOOPBACK_NAMES or _is_loopback(host)):
        return
    raise InvalidInput(
        f"redirect URI {uri!r} is not accepted: use https, or http on localhost or 127.0.0.1 for an app on the "
        "user's machine"
    )


def redirect_uri_registered(uri: str, registered: Iterable[str], /) -> bool:
    """Whether ``uri`` is one of the client's ``registered`` redirect URIs: the same URI, or, for an
    http URI on a loopback host, the same but for the port. A native app listens on a port it picks
    when it starts (RFC 8252 section 7.3; OAuth 2.1), so it registers its URI with any port, or
    none; scheme, host, path and query still match exactly, and other URIs match only whole."""
    return any(uri == known or _same_but_loopback_port(uri, known) for known in registered)


def check_scopes(requested: str | None, /, *, registered: str | None) -> list[str]:
    """The scopes an authorization request asks for: ``requested`` (space-separated), or when it
    names none the client's ``registered`` ones, else :data:`TOOL_SCOPES`. ``InvalidInput`` for a
    scope this server does not know or the client did not register."""
    asked = list(dict.fromkeys((requested or registered or " ".join(TOOL_SCOPES)).split()))
    unknown = [scope for scope in asked if scope not in SCOPES_SUPPORTED]
    if unknown:
        raise InvalidInput(f"unknown scope {unknown[0]!r}: this server's scopes are {', '.join(SCOPES_SUPPORTED)}")
    allowed = (registered or "").split()
    if allowed and not set(asked) <= set(allowed):
        extra = next(scope for scope in asked if scope not in allowed)
        raise InvalidInput(f"this client did not register the scope {extra!r}; it registered {' '.join(allowed)}")
    return asked


def effective_scopes(granted: Iterable[str], role: Role | str, /) -> list[str]:
    """What a grant's tokens may do: its tool scopes that ``role`` has, and ``offline_access`` if
    granted. A grant kept with no scope (made before scopes were asked for) has the role's."""
    names = set(granted) or set(TOOL_SCOPES)
    held = {scope.value for scope in ROLE_SCOPES[Role(role)]}
    return [scope for scope in SCOPES_SUPPORTED if scope in names and (scope == OFFLINE_ACCESS or scope in held)]


def _same_but_loopback_port(uri: str, registered: str) -> bool:
    try:
        asked, known = urlsplit(uri), urlsplit(registered)
        asked_host, known_host = asked.hostname, known.hostname
        _ = asked.port, known.port  # a port that is not a number is no match
    except ValueError:
        return False
    return (
        asked.scheme == known.scheme == "http"
        and known_host is not None
        and asked_host == known_host
        and (known_host in LOOPBACK_NAMES or _is_loopback(known_host))
        and "@" not in asked.netloc + known.netloc
        and (asked.path or "/") == (known.path or "/")
        and asked.query == known.query
        and not asked.fragment
    )


def _is_loopback(host: str) -> bool:
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def register_client(
    svc: Services,
    *,
    client_id: str,
    info: dict[str, Any],
    secret: str | None,
    source: str = "registered",
    fetched_at: datetime | None = None,
) -> ClientRecord:
    """Keep a client (its redirect URIs checked first); only the secret's hash is stored."""
    uris = [str(uri) for uri in info.get("redirect_uris") or []]
    if not uris:
        raise InvalidInput("a client needs at least one redirect URI")
    for uri in uris:
        check_redirect_uri(uri)
    name = str(info.get("client_name") or "").strip()[:CLIENT_NAME_MAX] or _host_of(uris[0])
    record = {key: value for key, value in info.items() if key != "client_secret"}
    with svc.store.session(write_lock=True) as session:
        client = oauth_repo.save_client(
            session,
            client_id=client_id,
            source=source,
            name=name,
            secret_hash=hash_secret(secret) if secret else None,
            info=record,
            fetched_at=fetched_at,
        )
        return _client_record(client)


def get_client(svc: Services, client_id: str, /) -> ClientRecord | None:
    with svc.store.session() as session:
        client = oauth_repo.get_client(session, client_id)
        return None if client is None else _client_record(client)


def consent(
    svc: Services,
    principal: Principal,
    *,
    client_id: str,
    redirect_uri: str,
    redirect_uri_explicit: bool,
    code_challenge: str,
    resource: str,
    scopes: list[str],
) -> str:
    """The signed-in user allows the client: a new grant and its authorization code (plaintext,
    for the redirect; only its hash is kept)."""
    user_id = _user_id_of(principal)
    if user_id is None:
        raise PermissionDenied(
            "only a person can let an app act for them: sign in with your e-mail address and password, not an API key"
        )
    code = CODE_PREFIX + secrets.token_urlsafe(32)
    with svc.store.session(write_lock=True) as session:
        if oauth_repo.get_client(session, client_id) is None:
            raise InvalidInput("this app is no longer registered; start connecting it again")
        grant = oauth_repo.create_grant(
            session,
            tenant_id=principal.tenant_id,
            user_id=user_id,
            client_id=client_id,
            resource=resource,
            scopes=scopes,
        )
        oauth_repo.create_code(
            session,
            grant_id=grant.id,
            code_hash=hash_secret(code),
            code_challenge=code_challenge,
            redirect_uri=redirect_uri,
            redirect_uri_explicit=redirect_uri_explicit,
            expires_at=utcnow() + timedelta(seconds=svc.settings.auth.oauth_code_seconds),
        )
        audit_repo.record_audit(
            session,
            action="oauth.consent",
            subject=principal.subject,
            tenant_id=principal.tenant_id,
            target=f"oauth_grant:{grant.id}",
            meta={"client_id": client_id, "role": principal.role.value, "scopes": scopes},
        )
    return code


def load_code(svc: Services, code: str, /) -> PendingCode | None:
    """The code's facts, also when it was used already (:func:`exchange_code` refuses it then)."""
    if not code.startswith(CODE_PREFIX):
        return None
    with svc.store.session() as session:
        found = oauth_repo.get_code(session, hash_secret(code))
        if found is None:
            return None
        row, grant = found
        return PendingCode(
            client_id=grant.client_id,
            grant_id=grant.id,
            code_challenge=row.code_challenge,
            redirect_uri=row.redirect_uri,
            redirect_uri_explicit=row.redirect_uri_explicit,
            expires_at=row.expires_at.timestamp(),
            resource=grant.resource,
            scopes=list(grant.scopes),
            subject=f"user:{grant.user_id}",
        )


def exchange_code(svc: Services, code: str, /, *, client_id: str) -> IssuedTokens:
    """Use the code (once) for the grant's first access and refresh tokens."""
    reused = False
    with svc.store.session(write_lock=True) as session:
        found = oauth_repo.get_code(session, hash_secret(code))
        if found is None:
            raise AuthError(INVALID_GRANT_MESSAGE)
        row, grant = found
        now = utcnow()
        if grant.client_id != client_id or grant.revoked_at is not None or row.expires_at <= now:
            raise AuthError(INVALID_GRANT_MESSAGE)
        if not oauth_repo.claim_code(session, row.id, now=now):
            oauth_repo.revoke_grant(session, grant, now=now)
            reused = True
        else:
            issued = _issue(svc, session, grant)
    if reused:  # committed: the grant stays revoked although the request fails
        logger.warning("an authorization code was used twice; its grant is revoked")
        raise AuthError(INVALID_GRANT_MESSAGE)
    return issued


def load_refresh_token(svc: Services, token: str, /) -> LiveRefreshToken | None:
    """The refresh token's facts while it may be used; None for anything else."""
    if not token.startswith(REFRESH_PREFIX):
        return None
    with svc.store.session() as session:
        found = oauth_repo.get_refresh_token(session, hash_secret(token))
        if found is None:
            return None
        row, grant = found
        if grant.revoked_at is not None:
            return None
        if row.revoked_at is not None:  # checked again, and acted on, when it is exchanged
            return LiveRefreshToken(grant.client_id, grant.id, list(grant.scopes), 0, grant.resource, "")
        return LiveRefreshToken(
            client_id=grant.client_id,
            grant_id=grant.id,
            scopes=list(grant.scopes),
            expires_at=int(row.expires_at.timestamp()),
            resource=grant.resource,
            subject=f"user:{grant.user_id}",
        )


def exchange_refresh_token(
    svc: Services, token: str, /, *, client_id: str, scopes: list[str] | None = None
) -> IssuedTokens:
    """Use the refresh token (once) for new tokens; a used one presented again revokes the grant.
    ``scopes`` (a part of the grant's) narrows the new access token (RFC 6749 section 6)."""
    replayed = False
    with svc.store.session(write_lock=True) as session:
        found = oauth_repo.get_refresh_token(session, hash_secret(token))
        if found is None:
            raise AuthError(INVALID_GRANT_MESSAGE)
        row, grant = found
        now = utcnow()
        if grant.client_id != client_id or grant.revoked_at is not None:
            raise AuthError(INVALID_GRANT_MESSAGE)
        if row.revoked_at is not None:
            oauth_repo.revoke_grant(session, grant, now=now)
            replayed = True
        elif row.expires_at <= now:
            raise AuthError(INVALID_GRANT_MESSAGE)
        else:
            row.revoked_at = now
            issued = _issue(svc, session, grant, replaces=row.id, scopes=scopes)
    if replayed:
        logger.warning("a used OAuth refresh token was presented again; its grant is revoked")
        raise AuthError(INVALID_GRANT_MESSAGE)
    return issued


def grant_of_access_token(svc: Services, token: str, /) -> tuple[str, str] | None:
    """``(grant id, client id)`` of an OAuth access token we signed (expired or not, any resource)."""
    return None if svc.tokens is None else svc.tokens.grant_of(token)


def revoke_by_client(svc: Services, grant_id: str, /, *, client_id: str) -> None:
    """RFC 7009: the client gives up a token of its grant; the whole grant ends (nothing is said
    when the grant is unknown or another client's)."""
    with svc.store.session(write_lock=True) as session:
        grant = oauth_repo.get_grant(session, grant_id)
        if grant is None or grant.client_id != client_id:
            return
        oauth_repo.revoke_grant(session, grant, now=utcnow())
        audit_repo.record_audit(
            session, action="oauth.revoke", subject=f"oauth_client:{client_id[:100]}", tenant_id=grant.tenant_id,
            target=f"oauth_grant:{grant.id}",
        )  # fmt: skip


def list_grants(svc: Services, principal: Principal) -> list[GrantPublic]:
    """The tenant's grants, newest first (admins)."""
    principal.require(Scope.MANAGE)
    with svc.store.session() as session:
        rows = oauth_repo.list_grants(session, tenant_id=principal.tenant_id)
        return [
            GrantPublic(
                id=grant.id,
                client_id=client.id,
                client_name=client.name,
                user_email=user.email,
                role=Role(user.role),
                scopes=[s for s in TOOL_SCOPES if s in grant.scopes and Scope(s) in ROLE_SCOPES[Role(user.role)]],
                created_at=grant.created_at,
                last_used_at=grant.last_used_at,
                active=grant.revoked_at is None,
            )
            for grant, client, user in rows
        ]


def revoke_grant(svc: Services, principal: Principal, grant_id: str, /) -> None:
    """An admin ends a grant of their tenant (another tenant's is ``NotFound``)."""
    principal.require(Scope.MANAGE)
    with svc.store.session(write_lock=True) as session:
        grant = oauth_repo.get_tenant_grant(session, grant_id, tenant_id=principal.tenant_id)
        oauth_repo.revoke_grant(session, grant, now=utcnow())
        audit_repo.record_audit(
            session,
            action="oauth.revoke",
            subject=principal.subject,
            tenant_id=principal.tenant_id,
            target=f"oauth_grant:{grant.id}",
        )


# -- internals ------------------------------------------------------------------------------------


def _issue(
    svc: Services,
    session: Session,
    grant: OAuthGrant,
    *,
    replaces: str | None = None,
    scopes: list[str] | None = None,
) -> IssuedTokens:
    signer = svc.tokens
    if signer is None:
        raise AuthError("sign-in is not available: this server has no token signing key")
    user = users_repo.get_user(session, grant.user_id, tenant_id=grant.tenant_id)
    if user.disabled_at is not None:
        raise AuthError(INVALID_GRANT_MESSAGE)
    tenant = tenants_repo.get_tenant(session, grant.tenant_id)
    granted = effective_scopes(grant.scopes if scopes is None else scopes, user.role)
    access, expires_in = signer.issue_granted(
        user_id=user.id,
        tenant_id=tenant.id,
        tenant_slug=tenant.slug,
        role=user.role,
        resource=grant.resource,
        grant_id=grant.id,
        client_id=grant.client_id,
        scopes=[scope for scope in granted if scope != OFFLINE_ACCESS],
    )
    refresh = REFRESH_PREFIX + secrets.token_urlsafe(32)
    lifetime = svc.settings.auth.oauth_refresh_token_seconds
    now = utcnow()
    row = oauth_repo.create_refresh_token(
        session, grant_id=grant.id, token_hash=hash_secret(refresh), expires_at=now + timedelta(seconds=lifetime)
    )
    if replaces is not None:
        previous = session.get(OAuthRefreshToken, replaces)
        if previous is not None:
            previous.replaced_by = row.id
    oauth_repo.touch_grant(session, grant, now=now, min_interval=LAST_USED_RESOLUTION)
    return IssuedTokens(access_token=access, expires_in=expires_in, refresh_token=refresh, scopes=granted)


def _client_record(client: Any) -> ClientRecord:
    return ClientRecord(
        client_id=client.id,
        name=client.name,
        source=client.source,
        secret_hash=client.secret_hash,
        info=dict(client.info),
        fetched_at=client.fetched_at,
    )


def _user_id_of(principal: Principal) -> str | None:
    kind, _, ident = principal.subject.partition(":")
    return ident if kind == "user" and ident else None


def _host_of(uri: str) -> str:
    try:
        return urlsplit(uri).hostname or uri
    except ValueError:
        return uri
