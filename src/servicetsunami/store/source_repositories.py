"""Reads and writes of data source connections, syncs and sync runs (see :mod:`.repositories`
for the conventions: the caller owns the transaction; another tenant's row is NotFound)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from servicetsunami.errors import Conflict, InvalidInput, NotFound
from servicetsunami.store.db import flush_or_conflict
from servicetsunami.store.models import (
    SYNC_MODES,
    Connection,
    Run,
    Sync,
    utcnow,
)

_Row = TypeVar("_Row", bound=Sync)

# ---------------------------------------------------------------------------------------------
# connections

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


def list_connections(session: Session, /, *, tenant_id: str) -> list[Connection]:
    return list(session.scalars(select(Connection).where(Connection.tenant_id == tenant_id).order_by(Connection.name)))


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
    sync_ids = select(Sync.id).where(Sync.connection_id == connection_id, Sync.tenant_id == tenant_id)
    session.execute(
        delete(Run)
        .where(Run.kind == "sync", Run.resource_id.in_(sync_ids), Run.tenant_id == tenant_id)
        .execution_options(synchronize_session="fetch")
    )
    result = session.execute(
        delete(Connection)
        .where(Connection.id == connection_id, Connection.tenant_id == tenant_id)
        .execution_options(synchronize_session="fetch")
    )
    if not getattr(result, "rowcount", 0):
        raise NotFound("connection not found")
    # The database cascaded to the syncs; objects this session holds are stale.
    _expire_loaded(session, Sync, lambda sync: sync.connection_id == connection_id)


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


# ---------------------------------------------------------------------------------------------
# syncs and runs


def upsert_sync(
    session: Session,
    /,
    *,
    tenant_id: str,
    connection_id: str,
    source_table: str,
    target_table: str,
    mode: str,
    cursor_column: str | None = None,
    primary_key: Sequence[str] = (),
    state: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
) -> Sync:
    """Create the sync writing ``target_table`` for the tenant, or update it in place (same id).

    The connection must be the tenant's (:class:`NotFound` otherwise). ``state`` None keeps the saved
    state (cursor, commit sequence) as it is; deciding when an old cursor no longer applies is the
    sync service's call, and the commit sequence must never go backwards. ``meta`` None keeps it.
    """
    if mode not in SYNC_MODES:
        raise InvalidInput(f"sync mode {mode!r} is not one of {', '.join(SYNC_MODES)}")
    get_connection(session, connection_id, tenant_id=tenant_id)
    fields: dict[str, Any] = {
        "connection_id": connection_id,
        "source_table": source_table,
        "mode": mode,
        "cursor_column": cursor_column,
        "primary_key": list(primary_key),
    }
    if state is not None:
        fields["state"] = dict(state)
    if meta is not None:
        fields["meta"] = dict(meta)
    sync = find_sync_by_target(session, target_table, tenant_id=tenant_id)
    if sync is None:
        try:
            with session.begin_nested():
                sync = Sync(tenant_id=tenant_id, target_table=target_table, **fields)
                session.add(sync)
            return sync
        except IntegrityError:
            sync = find_sync_by_target(session, target_table, tenant_id=tenant_id)
            if sync is None:
                raise
    for key, value in fields.items():
        setattr(sync, key, value)
    sync.updated_at = utcnow()
    session.flush()
    return sync


def get_sync(session: Session, sync_id: str, /, *, tenant_id: str) -> Sync:
    sync = session.scalar(select(Sync).where(Sync.id == sync_id, Sync.tenant_id == tenant_id))
    if sync is None:
        raise NotFound("sync not found")
    return sync


def find_sync_by_target(session: Session, target_table: str, /, *, tenant_id: str) -> Sync | None:
    return session.scalar(select(Sync).where(Sync.tenant_id == tenant_id, Sync.target_table == target_table))


def list_syncs(
    session: Session, /, *, tenant_id: str, connection_id: str | None = None
) -> list[tuple[Sync, Run | None]]:
    """The tenant's syncs by target table, each with its latest run (None before the first run)."""
    stmt = (
        select(Sync, Run)
        .outerjoin(Run, Run.id == Sync.last_run_id)
        .where(Sync.tenant_id == tenant_id)
        .order_by(Sync.target_table)
    )
    if connection_id is not None:
        stmt = stmt.where(Sync.connection_id == connection_id)
    return [(row[0], row[1]) for row in session.execute(stmt)]


def update_sync_state(
    session: Session,
    sync_id: str,
    /,
    *,
    tenant_id: str,
    state: dict[str, Any] | None = None,
    last_run_id: str | None = None,
) -> Sync:
    """Replace the saved state (call it in the transaction that records the commit it describes)
    and/or point at the sync's newest run."""
    sync = get_sync(session, sync_id, tenant_id=tenant_id)
    if state is not None:
        sync.state = dict(state)
    if last_run_id is not None:
        sync.last_run_id = last_run_id
    session.flush()
    return sync


def delete_sync(session: Session, sync_id: str, /, *, tenant_id: str) -> None:
    """Delete the sync and its runs; :class:`NotFound` if not the tenant's."""
    result = session.execute(
        delete(Sync)
        .where(Sync.id == sync_id, Sync.tenant_id == tenant_id)
        .execution_options(synchronize_session="fetch")
    )
    if not getattr(result, "rowcount", 0):
        raise NotFound("sync not found")
    session.execute(
        delete(Run)
        .where(Run.kind == "sync", Run.resource_id == sync_id, Run.tenant_id == tenant_id)
        .execution_options(synchronize_session="fetch")
    )


def _expire_loaded(session: Session, cls: type[_Row], matches: Callable[[_Row], bool]) -> set[str]:
    """Expire the loaded objects of ``cls`` that ``matches`` picks (changed behind the ORM's back);
    returns their ids. Expired rows reload on next access, or raise if they were deleted."""
    ids: set[str] = set()
    for obj in list(session.identity_map.values()):
        if isinstance(obj, cls) and matches(obj):
            ids.add(obj.id)
            session.expire(obj)
    return ids
