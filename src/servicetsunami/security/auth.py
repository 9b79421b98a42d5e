"""API keys: how they are made, stored and checked.

A key reads ``tsk_<prefix>_<secret>``: ``prefix`` is 8 random lower-case hex characters, public
(it is shown in listings and used to find the row), and ``secret`` is 32 random bytes, URL-safe
base64. The store keeps only the SHA-256 of the whole key. A slow password KDF (bcrypt, argon2)
protects guessable passwords; a 256-bit random secret cannot be guessed, so one fast hash is as
safe and keeps authentication cheap on every request.

:func:`authenticate_api_key` turns a key into a :class:`~servicetsunami.tenancy.Principal`. A
successful check is remembered in-process for :data:`CACHE_TTL_SECONDS`, keyed by the key's hash,
so the following requests cost a hash and a dict lookup. Every request that the cache answers still
reads whether the key is still in force (not revoked, not expired, the same role) through
``store.reads``, which remembers that answer only until anything is committed to the store (by
any process). A revocation, by this process or another worker, is therefore refused at the next
request, and between commits the check costs one ``PRAGMA data_version`` on SQLite (PostgreSQL
has no cheap equivalent: there it is one indexed read per request).

Every failure raises ``AuthError("invalid or revoked API key")``: an unknown prefix, a wrong
secret, a revoked or expired key all look the same to the caller. The key never appears in a
message or a log line.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from servicetsunami.errors import AuthError, StoreError
from servicetsunami.store.db import Store
from servicetsunami.store.models import ApiKey, utcnow
from servicetsunami.store.repositories import api_keys as api_keys_repo
from servicetsunami.tenancy import Principal, principal_for
from servicetsunami.toolsets import ToolSet

logger = logging.getLogger(__name__)

KEY_SCHEME = "tsk"
PREFIX_LENGTH = 8
SECRET_BYTES = 32
CACHE_TTL_SECONDS = 30.0
CACHE_MAX_ENTRIES = 10_000
LAST_USED_RESOLUTION = timedelta(minutes=1)
INVALID_KEY_MESSAGE = "invalid or revoked API key"

# tsk_ + 8 hex + _ + at least 43 urlsafe characters (32 bytes); no other shape is looked up.
_KEY_RE = re.compile(rf"^{KEY_SCHEME}_([0-9a-f]{{{PREFIX_LENGTH}}})_[A-Za-z0-9_-]{{43,128}}$")
# Compared against when the prefix is unknown, so that case costs the same as a wrong secret.
_DUMMY_HASH = hashlib.sha256(b"servicetsunami: no such key").hexdigest()


def generate_api_key() -> tuple[str, str, str]:
    """A new key: ``(plaintext, prefix, key_hash)``. Show the plaintext once; store only the hash."""
    prefix = secrets.token_hex(PREFIX_LENGTH // 2)
    plaintext = f"{KEY_SCHEME}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
    return plaintext, prefix, hash_api_key(plaintext)


def hash_api_key(plaintext: str, /) -> str:
    """Hex SHA-256 of the whole key (see the module docstring for why no KDF)."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def key_prefix(plaintext: str, /) -> str | None:
    """The public prefix of a well-formed key, or None if it does not look like one of ours."""
    match = _KEY_RE.fullmatch(plaintext)
    return match.group(1) if match else None


def looks_like_api_key(value: str, /) -> bool:
    """True for strings shaped like our keys (lets a front door tell keys from JWTs)."""
    return key_prefix(value) is not None


@dataclass(frozen=True, slots=True)
class _CachedKey:
    principal: Principal
    key_id: str
    expires_at: datetime | None
    cached_until: float  # time.monotonic()


class _KeyCache:
    """Successful authentications, keyed by (database, key hash), for a short TTL."""

    def __init__(self, ttl: float, max_entries: int) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[tuple[str, str], _CachedKey] = {}
        self._lock = threading.Lock()

    def get(self, db: str, key_hash: str) -> _CachedKey | None:
        entry = self._entries.get((db, key_hash))
        if entry is None:
            return None
        if entry.cached_until <= time.monotonic() or (entry.expires_at is not None and entry.expires_at <= utcnow()):
            self._pop(db, key_hash)
            return None
        return entry

    def put(self, db: str, key_hash: str, principal: Principal, key: ApiKey) -> None:
        entry = _CachedKey(principal, key.id, key.expires_at, time.monotonic() + self.ttl)
        with self._lock:
            if len(self._entries) >= self.max_entries:
                now = time.monotonic()
                self._entries = {k: v for k, v in self._entries.items() if v.cached_until > now}
                if len(self._entries) >= self.max_entries:
                    self._entries.clear()
            self._entries[(db, key_hash)] = entry

    def evict(self, key_hash: str) -> None:
        with self._lock:
            for cache_key in [k for k in self._entries if k[1] == key_hash]:
                del self._entries[cache_key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _pop(self, db: str, key_hash: str) -> None:
        with self._lock:
            self._entries.pop((db, key_hash), None)


_cache = _KeyCache(CACHE_TTL_SECONDS, CACHE_MAX_ENTRIES)


def authenticate_api_key(session_or_store: Session | Store, plaintext: str, /, *, catalog_prefix: str) -> Principal:
    """The principal of the API key ``plaintext``, or ``AuthError("invalid or revoked API key")``.

    With a :class:`Store`, a short transaction of its own is used (and only on a cache miss); with
    a :class:`Session`, the caller's transaction is used and ``last_used_at`` is written in it.
    """
    prefix = key_prefix(plaintext) if isinstance(plaintext, str) else None
    if prefix is None:
        raise AuthError(INVALID_KEY_MESSAGE)
    key_hash = hash_api_key(plaintext)
    db = _database_of(session_or_store)
    cached = _cache.get(db, key_hash)
    if cached is not None:
        if not _still_in_force(session_or_store, cached):
            _cache.evict(key_hash)
            raise AuthError(INVALID_KEY_MESSAGE)
        return cached.principal
    if isinstance(session_or_store, Store):
        with session_or_store.session() as session:
            principal, key = _check(session, prefix, key_hash, catalog_prefix=catalog_prefix)
        if _use_not_recorded_lately(key):
            _touch_in_own_transaction(session_or_store, key.id)
    else:
        principal, key = _check(session_or_store, prefix, key_hash, catalog_prefix=catalog_prefix)
        if _use_not_recorded_lately(key):
            _touch_in_savepoint(session_or_store, key.id)
    _cache.put(db, key_hash, principal, key)
    return principal


def needs_database(store: Store, plaintext: str, /) -> bool:
    """Whether authenticating ``plaintext`` as an API key looks its row up in the database (and may
    record its use): not when it is malformed (refused at once) or remembered in this process's
    cache (then only whether it is still in force is read, through ``store.reads``)."""
    if not isinstance(plaintext, str) or key_prefix(plaintext) is None:
        return False
    return _cache.get(_database_of(store), hash_api_key(plaintext)) is None


def revoke_api_key(session: Session, key_id: str, /, *, tenant_id: str) -> ApiKey:
    """Revoke the key ``key_id`` of ``tenant_id`` and forget it in this process's cache.

    A key of another tenant is :class:`~servicetsunami.errors.NotFound`.
    """
    key = api_keys_repo.revoke_api_key(session, key_id, tenant_id=tenant_id)
    evict_cached_key(key.key_hash)
    return key


def evict_cached_key(key_hash: str, /) -> None:
    """Forget a cached authentication (after revoking the key, or changing its role)."""
    _cache.evict(key_hash)


def clear_key_cache() -> None:
    """Forget every cached authentication in this process."""
    _cache.clear()


def _check(session: Session, prefix: str, key_hash: str, *, catalog_prefix: str) -> tuple[Principal, ApiKey]:
    found = api_keys_repo.get_api_key_by_prefix(session, prefix)
    stored_hash = found[0].key_hash if found is not None else _DUMMY_HASH
    hash_matches = hmac.compare_digest(stored_hash.encode("ascii"), key_hash.encode("ascii"))
    if found is None or not hash_matches:
        raise AuthError(INVALID_KEY_MESSAGE)
    key, tenant = found
    if not key.is_active(utcnow()):
        raise AuthError(INVALID_KEY_MESSAGE)
    principal = principal_for(
        tenant_id=tenant.id,
        tenant_slug=tenant.slug,
        subject=f"key:{key.prefix}",
        role=key.role,
        catalog_prefix=catalog_prefix,
        tools=ToolSet.from_json(key.tool_set),
    )
    return principal, key


def _still_in_force(session_or_store: Session | Store, cached: _CachedKey) -> bool:
    if isinstance(session_or_store, Store):
        store = session_or_store

        def read() -> tuple[str, datetime | None, datetime | None] | None:
            with store.session() as session:
                return _key_state(session, cached.key_id)

        state = store.reads.get(("api_key_state", cached.key_id), read)
    else:
        state = _key_state(session_or_store, cached.key_id)
    if state is None:
        return False
    role, revoked_at, expires_at = state
    now = utcnow()
    return revoked_at is None and (expires_at is None or expires_at > now) and role == cached.principal.role.value


def _key_state(session: Session, key_id: str) -> tuple[str, datetime | None, datetime | None] | None:
    row = session.execute(
        select(ApiKey.role, ApiKey.revoked_at, ApiKey.expires_at).where(ApiKey.id == key_id)
    ).one_or_none()
    return None if row is None else (row.role, row.revoked_at, row.expires_at)


def _use_not_recorded_lately(key: ApiKey) -> bool:
    # Skips the write (and, on SQLite, the write lock) for keys used in the last minute.
    return key.last_used_at is None or key.last_used_at < utcnow() - LAST_USED_RESOLUTION


def _touch_in_own_transaction(store: Store, key_id: str) -> None:
    # Bookkeeping only: a busy database must not turn a valid key into a failed request.
    try:
        with store.session() as session:
            api_keys_repo.touch_api_key(session, key_id, now=utcnow(), min_interval=LAST_USED_RESOLUTION)
    except StoreError:
        logger.warning("could not record API key use", exc_info=True)


def _touch_in_savepoint(session: Session, key_id: str) -> None:
    try:
        with session.begin_nested():
            api_keys_repo.touch_api_key(session, key_id, now=utcnow(), min_interval=LAST_USED_RESOLUTION)
    except SQLAlchemyError:
        logger.warning("could not record API key use", exc_info=True)


def _database_of(session_or_store: Session | Store) -> str:
    if isinstance(session_or_store, Store):
        engine = session_or_store.engine
    else:
        bind = session_or_store.get_bind()
        engine = bind.engine
    return engine.url.render_as_string(hide_password=True)
