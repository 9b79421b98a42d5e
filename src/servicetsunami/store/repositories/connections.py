"""Data source connections and their encrypted credentials (see the package docstring for the
conventions). Key rotation reads and swaps the credentials of every tenant through
:func:`list_connection_secrets` and :func:`replace_connection_secret`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from servicetsunami.errors import Conflict, InvalidInput, NotFound
from servicetsunami.store.db import flush_or_conflict
from servicetsunami.store.models import Connection, Sync, utcnow
from servicetsunami.store.repositories._keyset import bytewise, keyset
from servicetsunami.store.repositories._session import expire_loaded

# Keys that must never sit in a connection's clear-text config; credentials go through the key ring.
_SECRET_CONFIG_KEYS = frozenset({"password", "passwd", "secret", "api_key", "token", "private_key", "credentials"})


class ConnectionSecret(NamedTuple):
    """A stored credential as key rotation sees it: the row, its tenant, the key id, the ciphertext."""

    id: str
    tenant_id: str
    kid: str
    ciphertext: bytes


def create_connection(
    session: Session,
    /,
    *,
    tenant_id: str,
    name: str,
    kind: str,
    config: dict[str, Any],
    secret_ciphertext: bytes | None = None,
    secret_kid: str | None = None,
    connection_id: str | None = None,
    meta: dict[str, Any] | None = None,
) -> Connection:
    """Insert a connection; :class:`Conflict` if the tenant already has one with this name.

    Pass ``connection_id`` when the secret was encrypted beforehand: the ciphertext is bound to the
    id (see :func:`servicetsunami.security.secrets.secret_aad`). ``config`` must hold no secret.
    """
    _check_config(config)
    _check_secret_pair(secret_ciphertext, secret_kid)
    if find_connection_by_name(session, name, tenant_id=tenant_id) is not None:
        raise Conflict(f"connection {name!r} already exists")
    connection = Connection(
        tenant_id=tenant_id,
        name=name,
        kind=kind,
        config=dict(config),
        secret_ciphertext=secret_ciphertext,
        secret_kid=secret_kid,
        meta=dict(meta or {}),
    )
    if connection_id is not None:
        connection.id = connection_id
    session.add(connection)
    flush_or_conflict(session, f"connection {name!r} already exists")
    return connection


def get_connection(session: Session, connection_id: str, /, *, tenant_id: str) -> Connection:
    """The connection ``connection_id`` of ``tenant_id``; :class:`NotFound` if missing or another tenant's."""
    connection = session.scalar(
        select(Connection).where(Connection.id == connection_id, Connection.tenant_id == tenant_id)
    )
    if connection is None:
        raise NotFound("connection not found")
    return connection


def find_connection_by_name(session: Session, name: str, /, *, tenant_id: str) -> Connection | None:
    return session.scalar(select(Connection).where(Connection.tenant_id == tenant_id, Connection.name == name))


def get_connection_by_name(session: Session, name: str, /, *, tenant_id: str) -> Connection:
    connection = find_connection_by_name(session, name, tenant_id=tenant_id)
    if connection is None:
        raise NotFound(f"connection {name!r} not found")
    return connection


def list_connections(
    session: Session, /, *, tenant_id: str, after: tuple[str, str] | None = None, limit: int | None = None
) -> list[Connection]:
    """By ``(name, id)``: the tenant's connections after ``after``, at most ``limit + 1``."""
    stmt = select(Connection).where(Connection.tenant_id == tenant_id)
    return list(
        session.scalars(keyset(stmt, (bytewise(Connection.name), bytewise(Connection.id)), after=after, limit=limit))
    )


def update_connection(
    session: Session,
    connection_id: str,
    /,
    *,
    tenant_id: str,
    name: str | None = None,
    config: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
) -> Connection:
    """Change the name, config or metadata (None leaves a field as it is)."""
    connection = get_connection(session, connection_id, tenant_id=tenant_id)
    if name is not None and name != connection.name:
        if find_connection_by_name(session, name, tenant_id=tenant_id) is not None:
            raise Conflict(f"connection {name!r} already exists")
        connection.name = name
    if config is not None:
        _check_config(config)
        connection.config = dict(config)
    if meta is not None:
        connection.meta = dict(meta)
    flush_or_conflict(session, f"connection {name!r} already exists")
    return connection


def set_connection_secret(
    session: Session, connection_id: str, /, *, tenant_id: str, ciphertext: bytes | None, kid: str | None
) -> Connection:
    """Store a new encrypted credential (or remove it with ``None, None``)."""
    _check_secret_pair(ciphertext, kid)
    connection = get_connection(session, connection_id, tenant_id=tenant_id)
    connection.secret_ciphertext = ciphertext
    connection.secret_kid = kid
    session.flush()
    return connection


def record_connection_test(
    session: Session,
    connection_id: str,
    /,
    *,
    tenant_id: str,
    ok: bool,
    detail: str | None = None,
    tested_at: datetime | None = None,
) -> Connection:
    """Remember the outcome of the latest connection check (``detail``: the diagnosis, no secret)."""
    connection = get_connection(session, connection_id, tenant_id=tenant_id)
    connection.last_tested_at = tested_at or utcnow()
    connection.last_test_ok = ok
    connection.last_test_detail = detail
    session.flush()
    return connection


def delete_connection(session: Session, connection_id: str, /, *, tenant_id: str) -> None:
    """Delete the connection with its syncs and their runs; :class:`NotFound` if not the tenant's."""
    from servicetsunami.store.repositories.syncs import delete_runs_of  # syncs import this module

    syncs_of = select(Sync.id).where(Sync.connection_id == connection_id, Sync.tenant_id == tenant_id)
    delete_runs_of(session, syncs_of, tenant_id=tenant_id)
    result = session.execute(
        delete(Connection)
        .where(Connection.id == connection_id, Connection.tenant_id == tenant_id)
        .execution_options(synchronize_session="fetch")
    )
    if not getattr(result, "rowcount", 0):
        raise NotFound("connection not found")
    # The database cascaded to the syncs; objects this session holds are stale.
    expire_loaded(session, Sync, lambda sync: sync.connection_id == connection_id)


def list_connection_secrets(session: Session, /, *, exclude_kid: str | None = None) -> list[ConnectionSecret]:
    """Every stored credential of every tenant (for key rotation), optionally skipping one key id."""
    stmt = select(Connection.id, Connection.tenant_id, Connection.secret_kid, Connection.secret_ciphertext).where(
        Connection.secret_ciphertext.is_not(None)
    )
    if exclude_kid is not None:
        stmt = stmt.where(Connection.secret_kid != exclude_kid)
    return [
        ConnectionSecret(id=row_id, tenant_id=tenant_id, kid=kid or "", ciphertext=bytes(ciphertext or b""))
        for row_id, tenant_id, kid, ciphertext in session.execute(stmt.order_by(Connection.id))
    ]


def count_connection_secrets_by_kid(session: Session, /) -> dict[str, int]:
    """How many stored credentials each key id encrypts."""
    rows = session.execute(
        select(Connection.secret_kid, func.count())
        .where(Connection.secret_kid.is_not(None))
        .group_by(Connection.secret_kid)
    )
    return {str(kid): int(count) for kid, count in rows}


def replace_connection_secret(
    session: Session, connection_id: str, /, *, old_ciphertext: bytes, ciphertext: bytes, kid: str
) -> bool:
    """Swap the credential for its re-encryption, only if it is still ``old_ciphertext``.

    One conditional UPDATE: if someone changed the credential meanwhile, nothing is written and
    False comes back. ``updated_at`` is kept, since the credential itself did not change.
    """
    result = session.execute(
        update(Connection)
        .where(Connection.id == connection_id, Connection.secret_ciphertext == old_ciphertext)
        .values(secret_ciphertext=ciphertext, secret_kid=kid, updated_at=Connection.updated_at)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def _check_config(config: dict[str, Any]) -> None:
    leaked = sorted(k for k in config if isinstance(k, str) and k.lower() in _SECRET_CONFIG_KEYS)
    if leaked:
        raise InvalidInput(f"connection config must not hold secrets ({', '.join(leaked)}); store them encrypted")


def _check_secret_pair(ciphertext: bytes | None, kid: str | None) -> None:
    if (ciphertext is None) != (kid is None):
        raise InvalidInput("a stored secret needs both its ciphertext and its key id")
