"""Access tokens (JWT, HS256 via PyJWT) and refresh tokens (opaque, stored hashed).

An access token is short-lived (``auth.access_token_seconds``) and carries everything a request
needs to build the :class:`~servicetsunami.tenancy.Principal` without a store lookup::

    {"iss": <auth.issuer>, "aud": <auth.audience>, "sub": "user:<id>", "tid": <tenant id>,
     "tsl": <tenant slug>, "role": "admin|engineer|analyst", "typ": "access",
     "iat": ..., "nbf": ..., "exp": ..., "jti": <random>}

Every use checks the signature, ``exp``/``nbf``/``iat``, the issuer and the audience; ``alg`` is
pinned to HS256 (a token saying ``none`` or ``RS256`` is refused). REST and the MCP HTTP door both
verify through :meth:`TokenSigner.principal`, which remembers the tokens it has verified (by their
exact text, until their ``exp``) so that a client's following requests cost a dict lookup.

A valid signature says who the user was when the token was issued, not who they are now:
:func:`require_current_user` (called by ``Services.authenticate`` after every verification, cached or
not) refuses the token once its user is disabled, deleted, moved to another role or tenant. It
reads the user's state through ``store.reads``, remembered until anything is committed to the
store by any process, so a change is seen at the next request on every worker while an unchanged
store costs one ``PRAGMA data_version`` on SQLite (one indexed read on PostgreSQL).

An access token given to an MCP client through OAuth (:meth:`TokenSigner.issue_granted`) has the
same claims plus ``"gid"`` (its grant), ``"cid"`` (the client) and ``"scope"`` (the permissions
granted, space-separated: its principal has those its role has, no others), and its ``aud`` is the
MCP resource it was issued for (``<base>/mcp``), not ``auth.audience``: REST refuses it, and ``/mcp``
accepts it only where that resource is served (:meth:`TokenSigner.granted_principal`), and only
while its grant is in force (:func:`require_live_grant`, read like the user's state below); its use
is recorded on the grant at most once a minute (:func:`record_grant_use`).

A refresh token reads ``tsr_<secret>`` (32 random bytes); the store keeps its SHA-256 only (a random
256-bit secret needs no slow KDF, as for API keys). Rotation and replay detection live in
:mod:`servicetsunami.services.identity.users`.

The signing key (:func:`load_token_signer`): ``TSUNAMI_AUTH__JWT_SECRET`` if set; otherwise, in
single-user mode, the key file ``<home>/jwt.key`` created with mode 0600 on first start. In
multi-tenant mode an empty, short (< 32 characters) or well-known key stops the start.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
from sqlalchemy import select

from servicetsunami.errors import AuthError, SigningKeyError, StoreError, TsunamiError
from servicetsunami.security.secrets import _create_exclusive
from servicetsunami.store.models import OAuthGrant, User, utcnow
from servicetsunami.store.repositories import oauth as oauth_repo
from servicetsunami.tenancy import Principal, Role, principal_for

if TYPE_CHECKING:
    from servicetsunami.settings import Settings
    from servicetsunami.store.db import Store

logger = logging.getLogger(__name__)

ALGORITHM = "HS256"
MIN_SECRET_LENGTH = 32
REFRESH_SCHEME = "tsr"
KEY_FILE_NAME = "jwt.key"
INVALID_TOKEN_MESSAGE = "invalid or expired access token; log in again or use your refresh token"
VERIFIED_CACHE_MAX = 10_000
LAST_USED_RESOLUTION = timedelta(minutes=1)
WEAK_SECRETS = frozenset(
    {"", "secret", "changeme", "change-me", "changethis", "default", "development", "dev", "jwt", "password", "test"}
)


class TokenSigner:
    """Issues and verifies access tokens with one HS256 key."""

    def __init__(self, key: bytes, /, *, issuer: str, audience: str, access_seconds: int, catalog_prefix: str) -> None:
        self._key = key
        self.issuer = issuer
        self.audience = audience
        self.access_seconds = access_seconds
        self._catalog_prefix = catalog_prefix
        # token -> (principal, exp, grant id or None, audience of a grant's token)
        self._verified: dict[str, tuple[Principal, float, str | None, str | None]] = {}
        self._verified_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TokenSigner(issuer={self.issuer!r}, audience={self.audience!r})"

    def derived_key(self, purpose: str, /) -> bytes:
        """A key for another use (the console's CSRF tokens), derived from this one: knowing it
        does not give the access-token key."""
        return hmac.new(self._key, f"servicetsunami:{purpose}".encode(), hashlib.sha256).digest()

    def issue(self, *, user_id: str, tenant_id: str, tenant_slug: str, role: str) -> tuple[str, int]:
        """A new access token and its lifetime in seconds."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": f"user:{user_id}",
            "tid": tenant_id,
            "tsl": tenant_slug,
            "role": role,
            "typ": "access",
            "iat": now,
            "nbf": now,
            "exp": now + self.access_seconds,
            "jti": secrets.token_urlsafe(12),
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM), self.access_seconds

    def issue_granted(
        self,
        *,
        user_id: str,
        tenant_id: str,
        tenant_slug: str,
        role: str,
        resource: str,
        grant_id: str,
        client_id: str,
        scopes: Iterable[str],
    ) -> tuple[str, int]:
        """A new access token of an OAuth grant, for ``resource`` only and ``scopes`` (of
        :class:`~servicetsunami.tenancy.Scope`) at most, and its lifetime in seconds."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": resource,
            "sub": f"user:{user_id}",
            "tid": tenant_id,
            "tsl": tenant_slug,
            "role": role,
            "typ": "access",
            "gid": grant_id,
            "cid": client_id,
            "scope": " ".join(scopes),
            "iat": now,
            "nbf": now,
            "exp": now + self.access_seconds,
            "jti": secrets.token_urlsafe(12),
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM), self.access_seconds

    def claims(self, token: str, /, *, audience: str | None = None) -> dict[str, Any]:
        """The verified claims of ``token``; ``AuthError`` for anything not issued by us, for
        ``audience`` (default ``auth.audience``), now."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=audience or self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
                leeway=5,
            )
        except jwt.PyJWTError:
            raise AuthError(INVALID_TOKEN_MESSAGE) from None
        if claims.get("typ") != "access" or not str(claims.get("sub", "")).startswith("user:"):
            raise AuthError(INVALID_TOKEN_MESSAGE)
        return claims

    def principal(self, token: str, /) -> Principal:
        known = self._verified.get(token)
        if known is not None and known[1] > time.time() and known[2] is None:
            return known[0]
        claims = self.claims(token)
        if "gid" in claims:  # only a grant's own resource takes its tokens
            raise AuthError(INVALID_TOKEN_MESSAGE)
        principal = self._principal_of(claims)
        self._remember(token, principal, claims)
        return principal

    def granted_principal(self, token: str, /, *, resource: str) -> tuple[Principal, str]:
        """The principal of an OAuth access token issued for ``resource``, and its grant's id."""
        known = self._verified.get(token)
        if known is not None and known[1] > time.time() and known[2] is not None and known[3] == resource:
            return known[0], known[2]
        claims = self.claims(token, audience=resource)
        grant_id = claims.get("gid")
        if not isinstance(grant_id, str) or not grant_id:
            raise AuthError(INVALID_TOKEN_MESSAGE)
        principal = self._principal_of(claims)
        granted = claims.get("scope")
        if isinstance(granted, str):  # tokens issued before scopes were granted carry the role's
            names = set(granted.split())
            principal = replace(principal, scopes=frozenset(s for s in principal.scopes if s.value in names))
        self._remember(token, principal, claims)
        return principal, grant_id

    def grant_of(self, token: str, /) -> tuple[str, str] | None:
        """``(grant id, client id)`` of an OAuth access token signed by us, whatever its resource and
        even expired (a client revoking it at ``/revoke``); None for anything else."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                options={"verify_aud": False, "verify_exp": False, "require": ["iss", "sub"]},
            )
        except jwt.PyJWTError:
            return None
        grant_id, client_id = claims.get("gid"), claims.get("cid")
        if isinstance(grant_id, str) and isinstance(client_id, str):
            return grant_id, client_id
        return None

    def _principal_of(self, claims: dict[str, Any]) -> Principal:
        try:
            return principal_for(
                tenant_id=str(claims["tid"]),
                tenant_slug=str(claims["tsl"]),
                subject=str(claims["sub"]),
                role=Role(claims["role"]),
                catalog_prefix=self._catalog_prefix,
            )
        except (KeyError, ValueError, TsunamiError):
            raise AuthError(INVALID_TOKEN_MESSAGE) from None

    def _remember(self, token: str, principal: Principal, claims: dict[str, Any]) -> None:
        grant_id = claims.get("gid")
        audience = str(claims["aud"]) if grant_id is not None else None
        with self._verified_lock:
            if len(self._verified) >= VERIFIED_CACHE_MAX:
                now = time.time()
                self._verified = {t: v for t, v in self._verified.items() if v[1] > now}
                if len(self._verified) >= VERIFIED_CACHE_MAX:
                    self._verified.clear()
            self._verified[token] = (principal, float(claims["exp"]), grant_id, audience)


def require_current_user(store: Store, principal: Principal, /) -> None:
    """``AuthError`` unless the user of a verified access token is still active, in the token's tenant
    and with the token's role (see the module docstring)."""
    user_id = principal.subject.removeprefix("user:")

    def read() -> tuple[str, str, bool] | None:
        with store.session() as session:
            row = session.execute(
                select(User.tenant_id, User.role, User.disabled_at).where(User.id == user_id)
            ).one_or_none()
        return None if row is None else (row.tenant_id, row.role, row.disabled_at is None)

    state = store.reads.get(("user_state", user_id), read)
    if state != (principal.tenant_id, principal.role.value, True):
        raise AuthError(INVALID_TOKEN_MESSAGE)


def require_live_grant(store: Store, grant_id: str, /) -> datetime | None:
    """``AuthError`` unless the OAuth grant ``grant_id`` is still in force (not revoked, not deleted);
    else when it was last used (for :func:`record_grant_use`, read with its state at no extra cost)."""

    def read() -> tuple[bool, datetime | None] | None:
        with store.session() as session:
            row = session.execute(
                select(OAuthGrant.revoked_at, OAuthGrant.last_used_at).where(OAuthGrant.id == grant_id)
            ).one_or_none()
        return None if row is None else (row.revoked_at is None, row.last_used_at)

    state = store.reads.get(("oauth_grant_state", grant_id), read)
    if state is None or not state[0]:
        raise AuthError(INVALID_TOKEN_MESSAGE)
    return state[1]


def record_grant_use(store: Store, grant_id: str, /, *, last_used: datetime | None) -> None:
    """Note that an access token of the grant was used (the admin page's "last used"), as API keys'
    use is (:mod:`servicetsunami.security.auth`): only when ``last_used`` (as
    :func:`require_live_grant` read it, remembered until the next commit) is older than
    :data:`LAST_USED_RESOLUTION`, by one conditional UPDATE. A client's requests therefore write at
    most once a minute, whichever worker answers."""
    if last_used is not None and last_used >= utcnow() - LAST_USED_RESOLUTION:
        return
    try:  # bookkeeping only: a busy store must not turn a valid token into a failed request
        with store.session() as session:
            oauth_repo.touch_grant_by_id(session, grant_id, now=utcnow(), min_interval=LAST_USED_RESOLUTION)
    except StoreError:
        logger.warning("could not record an OAuth grant's use", exc_info=True)


def looks_like_jwt(value: str, /) -> bool:
    return isinstance(value, str) and value.count(".") == 2 and len(value) < 8192


def new_refresh_token() -> tuple[str, str]:
    """``(plaintext, sha256 hex)``; only the hash is stored."""
    plaintext = f"{REFRESH_SCHEME}_{secrets.token_urlsafe(32)}"
    return plaintext, hash_refresh_token(plaintext)


def hash_refresh_token(plaintext: str, /) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def load_token_signer(settings: Settings) -> TokenSigner:
    """The signer for these settings; :class:`SigningKeyError` when the key is missing or unsafe."""
    return TokenSigner(
        _signing_key(settings),
        issuer=settings.auth.issuer,
        audience=settings.auth.audience,
        access_seconds=settings.auth.access_token_seconds,
        catalog_prefix=settings.catalog_prefix,
    )


def _signing_key(settings: Settings) -> bytes:
    configured = settings.auth.jwt_secret.get_secret_value() if settings.auth.jwt_secret is not None else ""
    if configured:
        weak = configured.strip().lower() in WEAK_SECRETS or len(configured) < MIN_SECRET_LENGTH
        if weak and settings.multi_tenant:
            raise SigningKeyError(
                "TSUNAMI_AUTH__JWT_SECRET is a default or shorter than 32 characters; refusing to start in "
                'multi-tenant mode: set it to e.g. `python -c "import secrets;print(secrets.token_urlsafe(48))"`'
            )
        if weak:
            logger.warning("the token signing key is weak; use at least 32 random characters")
        return configured.encode("utf-8")
    if settings.multi_tenant:
        raise SigningKeyError(
            "TSUNAMI_AUTH__JWT_SECRET is not set; multi-tenant mode needs a signing key of at least 32 random "
            "characters (the key file is only created in single-user mode)"
        )
    return _key_file(settings.resolved_home / KEY_FILE_NAME)


def _key_file(path: Path) -> bytes:
    if not path.exists():
        created = _create_exclusive(path, base64.urlsafe_b64encode(os.urandom(48)).decode("ascii") + "\n")
        if created:
            logger.info("created the token signing key file %s", path)
    if os.name == "posix" and path.stat().st_mode & 0o077:
        raise SigningKeyError(
            f"the token signing key file {path} can be read or changed by other users; run `chmod 600 {path}` "
            "(and treat issued tokens as compromised)"
        )
    key = path.read_text("utf-8").strip()
    if len(key) < MIN_SECRET_LENGTH:
        raise SigningKeyError(f"the token signing key file {path} holds no usable key; delete it to make a new one")
    return key.encode("utf-8")
