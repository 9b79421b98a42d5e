"""Reads and writes of the system-of-record tables, as small functions over a :class:`Session`.

The caller owns the transaction (``with store.session() as s: ...``); these functions flush so that
ids and constraint errors show up at the call, and never commit. Everything that belongs to a
tenant is looked up *within* that tenant: a row of another tenant is reported as
:class:`~servicetsunami.errors.NotFound`, exactly like a row that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import delete, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from servicetsunami.errors import Conflict, InvalidInput, NotFound
from servicetsunami.store.models import (
    FINISHED_RUN_STATUSES,
    ROLES,
    RUN_STATUSES,
    SYNC_MODES,
    ApiKey,
    AuditLog,
    Connection,
    Dataset,
    Sync,
    SyncRun,
    Tenant,
    utcnow,
)

_Row = TypeVar("_Row", Sync, SyncRun)

# ---------------------------------------------------------------------------------------------
# tenants


def create_tenant(session: Session, /, *, slug: str, name: str, meta: dict[str, Any] | None = None) -> Tenant:
    """Insert a tenant; :class:`Conflict` if the slug is taken. The slug is assumed checked."""
    if session.scalar(select(exists().where(Tenant.slug == slug))):
        raise Conflict(f"tenant {slug!r} already exists")
    tenant = Tenant(slug=slug, name=name, meta=dict(meta or {}))
    session.add(tenant)
    _flush_or_conflict(session, f"tenant {slug!r} already exists")
    return tenant


def get_tenant(session: Session, tenant_id: str, /) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("tenant not found")
    return tenant


def get_tenant_by_slug(session: Session, slug: str, /) -> Tenant:
    tenant = session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise NotFound(f"tenant {slug!r} not found")
    return tenant


def list_tenants(session: Session, /) -> list[Tenant]:
    return list(session.scalars(select(Tenant).order_by(Tenant.slug)))


def has_tenants(session: Session, /) -> bool:
    return bool(session.scalar(select(exists().where(Tenant.id.is_not(None)))))


# ---------------------------------------------------------------------------------------------
# api keys


def create_api_key(
    session: Session,
    /,
    *,
    tenant_id: str,
    name: str,
    prefix: str,
    key_hash: str,
    role: str,
    expires_at: datetime | None = None,
    meta: dict[str, Any] | None = None,
) -> ApiKey:
    """Insert a key row. Takes the hash, never the key (see :mod:`servicetsunami.security.auth`)."""
    if role not in ROLES:
        raise InvalidInput(f"role {role!r} is not one of {', '.join(ROLES)}")
    key = ApiKey(
        tenant_id=tenant_id,
        name=name,
        prefix=prefix,
        key_hash=key_hash,
        role=role,
        expires_at=expires_at,
        meta=dict(meta or {}),
    )
    session.add(key)
    _flush_or_conflict(session, "an API key with this prefix already exists")
    return key


def list_api_keys(session: Session, /, *, tenant_id: str, include_revoked: bool = True) -> list[ApiKey]:
    stmt = select(ApiKey).where(ApiKey.tenant_id == tenant_id)
    if not include_revoked:
        stmt = stmt.where(ApiKey.revoked_at.is_(None))
    return list(session.scalars(stmt.order_by(ApiKey.created_at, ApiKey.prefix)))


def get_api_key(session: Session, key_id: str, /, *, tenant_id: str) -> ApiKey:
    """The key ``key_id`` of ``tenant_id``; :class:`NotFound` if missing or another tenant's."""
    key = session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.tenant_id == tenant_id))
    if key is None:
        raise NotFound("API key not found")
    return key


def find_api_key(session: Session, id_or_prefix: str, /, *, tenant_id: str) -> ApiKey:
    """The key of ``tenant_id`` whose id or prefix is ``id_or_prefix``; :class:`NotFound` otherwise."""
    key = session.scalar(
        select(ApiKey).where(
            ApiKey.tenant_id == tenant_id, or_(ApiKey.id == id_or_prefix, ApiKey.prefix == id_or_prefix)
        )
    )
    if key is None:
        raise NotFound("API key not found")
    return key


def get_api_key_by_prefix(session: Session, prefix: str, /) -> tuple[ApiKey, Tenant] | None:
    """The key with this public prefix and its tenant, across all tenants (for authentication)."""
    row = session.execute(
        select(ApiKey, Tenant).join(Tenant, Tenant.id == ApiKey.tenant_id).where(ApiKey.prefix == prefix)
    ).first()
    return None if row is None else (row[0], row[1])


def revoke_api_key(session: Session, key_id: str, /, *, tenant_id: str, now: datetime | None = None) -> ApiKey:
    """Mark the key revoked (idempotent: an already revoked key keeps its first revocation time)."""
    key = get_api_key(session, key_id, tenant_id=tenant_id)
    if key.revoked_at is None:
        key.revoked_at = now or utcnow()
        session.flush()
    return key


def touch_api_key(session: Session, key_id: str, /, *, now: datetime, min_interval: timedelta) -> bool:
    """Set ``last_used_at`` to ``now`` unless it was set less than ``min_interval`` ago.

    One conditional UPDATE, so concurrent requests never write the row more than once a minute.
    Returns whether the row was written.
    """
    result = session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - min_interval),
        )
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


# ---------------------------------------------------------------------------------------------
# datasets


def upsert_dataset(
    session: Session,
    /,
    *,
    tenant_id: str,
    name: str,
    table_schema: str,
    table_name: str,
    source_name: str,
    landing_path: str,
    format: str,
    rows: int,
    table_version: int,
    size_bytes: int | None = None,
    source_kind: str = "file",
    meta: dict[str, Any] | None = None,
) -> Dataset:
    """Create the dataset ``(tenant_id, name)`` or replace its fields; returns the row.

    Safe against a concurrent insert of the same name: the loser of the race updates the winner's
    row instead of failing.
    """
    fields: dict[str, Any] = {
        "table_schema": table_schema,
        "table_name": table_name,
        "source_kind": source_kind,
        "source_name": source_name,
        "landing_path": landing_path,
        "format": format,
        "rows": rows,
        "size_bytes": size_bytes,
        "table_version": table_version,
        "meta": dict(meta or {}),
    }
    dataset = find_dataset(session, name, tenant_id=tenant_id)
    if dataset is None:
        try:
            with session.begin_nested():
                dataset = Dataset(tenant_id=tenant_id, name=name, **fields)
                session.add(dataset)
            return dataset
        except IntegrityError:
            dataset = find_dataset(session, name, tenant_id=tenant_id)
            if dataset is None:  # the conflict was not on the name (e.g. unknown tenant)
                raise
    for key, value in fields.items():
        setattr(dataset, key, value)
    dataset.updated_at = utcnow()
    session.flush()
    return dataset


def find_dataset(session: Session, name: str, /, *, tenant_id: str) -> Dataset | None:
    return session.scalar(select(Dataset).where(Dataset.tenant_id == tenant_id, Dataset.name == name))


def get_dataset(session: Session, name: str, /, *, tenant_id: str) -> Dataset:
    dataset = find_dataset(session, name, tenant_id=tenant_id)
    if dataset is None:
        raise NotFound(f"dataset {name!r} not found")
    return dataset


def list_datasets(session: Session, /, *, tenant_id: str) -> list[Dataset]:
    return list(session.scalars(select(Dataset).where(Dataset.tenant_id == tenant_id).order_by(Dataset.name)))


def delete_dataset(session: Session, name: str, /, *, tenant_id: str) -> bool:
    """Delete the dataset row; returns whether there was one."""
    result = session.execute(
        delete(Dataset)
        .where(Dataset.tenant_id == tenant_id, Dataset.name == name)
        .execution_options(synchronize_session="fetch")
    )
    return bool(getattr(result, "rowcount", 0))


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
    _flush_or_conflict(session, f"connection {name!r} already exists")
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
    _flush_or_conflict(session, f"connection {name!r} already exists")
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
    result = session.execute(
        delete(Connection)
        .where(Connection.id == connection_id, Connection.tenant_id == tenant_id)
        .execution_options(synchronize_session="fetch")
    )
    if not getattr(result, "rowcount", 0):
        raise NotFound("connection not found")
    # The database cascaded to the syncs and their runs; objects this session holds are stale.
    sync_ids = _expire_loaded(session, Sync, lambda sync: sync.connection_id == connection_id)
    _expire_loaded(session, SyncRun, lambda run: run.sync_id in sync_ids)


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
) -> list[tuple[Sync, SyncRun | None]]:
    """The tenant's syncs by target table, each with its latest run (None before the first run)."""
    stmt = (
        select(Sync, SyncRun)
        .outerjoin(SyncRun, SyncRun.id == Sync.last_run_id)
        .where(Sync.tenant_id == tenant_id)
        .order_by(Sync.target_table)
    )
    if connection_id is not None:
        stmt = stmt.where(Sync.connection_id == connection_id)
    return [(row[0], row[1]) for row in session.execute(stmt)]


def update_sync_state(
    session: Session, sync_id: str, /, *, tenant_id: str, state: dict[str, Any], last_run_id: str | None = None
) -> Sync:
    """Replace the saved state (call it in the transaction that records the commit it describes)."""
    sync = get_sync(session, sync_id, tenant_id=tenant_id)
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
    _expire_loaded(session, SyncRun, lambda run: run.sync_id == sync_id)


def create_run(
    session: Session,
    /,
    *,
    tenant_id: str,
    sync_id: str,
    status: str = "pending",
    meta: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> SyncRun:
    """Start a run record for the tenant's sync and make it the sync's latest run."""
    _check_status(status)
    sync = get_sync(session, sync_id, tenant_id=tenant_id)
    moment = now or utcnow()
    run = SyncRun(
        tenant_id=tenant_id,
        sync_id=sync.id,
        status=status,
        started_at=moment,
        updated_at=moment,
        meta=dict(meta or {}),
    )
    session.add(run)
    session.flush()
    sync.last_run_id = run.id
    session.flush()
    return run


def get_run(session: Session, run_id: str, /, *, tenant_id: str) -> SyncRun:
    run = session.scalar(select(SyncRun).where(SyncRun.id == run_id, SyncRun.tenant_id == tenant_id))
    if run is None:
        raise NotFound("sync run not found")
    return run


def list_runs(session: Session, sync_id: str, /, *, tenant_id: str, limit: int = 50) -> list[SyncRun]:
    """The sync's runs, newest first."""
    get_sync(session, sync_id, tenant_id=tenant_id)
    stmt = (
        select(SyncRun)
        .where(SyncRun.sync_id == sync_id, SyncRun.tenant_id == tenant_id)
        .order_by(SyncRun.started_at.desc(), SyncRun.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def update_run(
    session: Session,
    run_id: str,
    /,
    *,
    tenant_id: str,
    status: str | None = None,
    progress: dict[str, Any] | None = None,
    rows: int | None = None,
    bytes: int | None = None,
    batches: int | None = None,
    table_version: int | None = None,
    error: str | None = None,
    finished_at: datetime | None = None,
) -> SyncRun:
    """Record progress or the outcome of a run (None leaves a field as it is).

    Moving to a finished status (succeeded, failed, cancelled) sets ``finished_at`` unless given.
    A run that has already finished cannot change any more: :class:`Conflict`. A worker thus learns
    that its run was cancelled, or failed as stale, at its next progress update.
    """
    if status is not None:
        _check_status(status)
    run = get_run(session, run_id, tenant_id=tenant_id)
    if run.status in FINISHED_RUN_STATUSES:
        raise Conflict(f"sync run already {run.status}", status=run.status)
    changes: dict[str, Any] = {
        "status": status,
        "rows": rows,
        "bytes": bytes,
        "batches": batches,
        "table_version": table_version,
        "error": error,
        "finished_at": finished_at,
    }
    for key, value in changes.items():
        if value is not None:
            setattr(run, key, value)
    if progress is not None:
        run.progress = dict(progress)
    if run.status in FINISHED_RUN_STATUSES and run.finished_at is None:
        run.finished_at = utcnow()
    run.updated_at = utcnow()
    session.flush()
    return run


def mark_stale_runs(
    session: Session,
    /,
    *,
    run_ids: Sequence[str] | None = None,
    older_than: datetime | None = None,
    statuses: Sequence[str] = ("running",),
    error: str = "the process running this sync stopped before it finished; run the sync again to resume",
    now: datetime | None = None,
) -> list[str]:
    """Fail runs left unfinished by a dead process; returns the ids of the runs it failed.

    Picks runs in ``statuses`` that are among ``run_ids`` and/or whose last update (heartbeat) is
    before ``older_than``; at least one of the two must be given. Across all tenants: this is the
    runner's housekeeping, not a tenant's request.
    """
    if run_ids is None and older_than is None:
        raise InvalidInput("mark_stale_runs needs run ids or a cut-off time")
    for status in statuses:
        _check_status(status)
    stmt = update(SyncRun).where(SyncRun.status.in_(list(statuses)))
    if run_ids is not None:
        if not run_ids:
            return []
        stmt = stmt.where(SyncRun.id.in_(list(run_ids)))
    if older_than is not None:
        stmt = stmt.where(SyncRun.updated_at < older_than)
    moment = now or utcnow()
    result = session.execute(
        stmt.values(status="failed", error=error, finished_at=moment, updated_at=moment)
        .returning(SyncRun.id)
        .execution_options(synchronize_session=False)
    )
    failed = sorted(str(row[0]) for row in result)
    # Runs this session already loaded must not keep showing "running".
    _expire_loaded(session, SyncRun, lambda run: run.id in failed)
    return failed


def _expire_loaded(session: Session, cls: type[_Row], matches: Callable[[_Row], bool]) -> set[str]:
    """Expire the loaded objects of ``cls`` that ``matches`` picks (changed behind the ORM's back);
    returns their ids. Expired rows reload on next access, or raise if they were deleted."""
    ids: set[str] = set()
    for obj in list(session.identity_map.values()):
        if isinstance(obj, cls) and matches(obj):
            ids.add(obj.id)
            session.expire(obj)
    return ids


def _check_status(status: str) -> None:
    if status not in RUN_STATUSES:
        raise InvalidInput(f"run status {status!r} is not one of {', '.join(RUN_STATUSES)}")


# ---------------------------------------------------------------------------------------------
# audit


def record_audit(
    session: Session,
    /,
    *,
    action: str,
    subject: str,
    tenant_id: str | None = None,
    target: str | None = None,
    meta: dict[str, Any] | None = None,
) -> AuditLog:
    """Append an audit entry (``action`` like ``api_key.revoke``; ``meta`` must hold no secret)."""
    entry = AuditLog(tenant_id=tenant_id, subject=subject, action=action, target=target, meta=dict(meta or {}))
    session.add(entry)
    session.flush()
    return entry


def list_audit(session: Session, /, *, tenant_id: str | None = None, limit: int = 100) -> list[AuditLog]:
    """Newest first; all tenants when ``tenant_id`` is None."""
    stmt = select(AuditLog)
    if tenant_id is not None:
        stmt = stmt.where(AuditLog.tenant_id == tenant_id)
    return list(session.scalars(stmt.order_by(AuditLog.created_at.desc()).limit(limit)))


def _flush_or_conflict(session: Session, message: str) -> None:
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(message) from exc
