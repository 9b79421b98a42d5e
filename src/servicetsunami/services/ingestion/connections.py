"""Data source connections: stored with their secret encrypted, checked with a diagnosis a person
can act on, discovered. No function here returns or logs a secret.

What a connection of each kind holds, which of it is secret, which host it reaches and how it
becomes a Source is the kind's entry in :mod:`servicetsunami.connectors.registry`; the functions
here are the same for every kind.

Passwords given as tool arguments end up in chat transcripts; ``tsunami connections create``
(which prompts) and the REST API are the safer ways. ``password_env`` names an environment variable
of the server; it is only honoured in single-user embedded mode, where the server is the user's own.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from servicetsunami.connectors.base import Source, StreamInfo
from servicetsunami.connectors.files.limits import StructureLimits
from servicetsunami.connectors.files.reader import FileOptions
from servicetsunami.connectors.registry import SOURCE_KINDS, SourceContext, SourceKind, source_kind
from servicetsunami.connectors.sheets.config import GoogleUrls
from servicetsunami.errors import InvalidInput, NotSupported, PermissionDenied
from servicetsunami.security.secrets import secret_aad
from servicetsunami.security.ssrf import check_source_host
from servicetsunami.services.ingestion import parsing
from servicetsunami.store.models import Connection, new_id
from servicetsunami.store.repositories import audit as audit_repo
from servicetsunami.store.repositories import connections as connections_repo
from servicetsunami.tenancy import LANDING_VOLUME, Principal, Scope, check_identifier

if TYPE_CHECKING:
    from servicetsunami.connectors.files.source import FileStager
    from servicetsunami.services.container import Services

logger = logging.getLogger(__name__)


class ConnectionPublic(BaseModel):
    id: str
    name: str
    kind: str
    config: dict[str, Any] = Field(
        description="The settings of its kind (postgres: host, port, database, user, sslmode, schemas); never a secret"
    )
    has_password: bool
    created_at: datetime
    last_tested_at: datetime | None = None
    last_test_ok: bool | None = None
    last_test_detail: str | None = None


class ConnectionTest(BaseModel):
    connection_id: str
    ok: bool
    latency_ms: float
    server_version: str | None = None
    problem: str | None = Field(None, description="dns, refused, timeout, auth, database, ssl, access, permission")
    diagnosis: str | None = Field(None, description="What happened and what to do about it")


class ConnectionCreated(ConnectionPublic):
    test: ConnectionTest


class SourceKindPublic(BaseModel):
    kind: str
    description: str
    secrets: list[str] = Field(description="Settings passed in `secrets`: stored encrypted, never returned")
    config_schema: dict[str, Any] = Field(description="JSON schema of the kind's settings, secrets included")


class SourceColumnPublic(BaseModel):
    name: str
    type: str
    nullable: bool


class SourceTable(BaseModel):
    name: str
    kind: str
    row_estimate: int | None
    size_bytes: int | None
    primary_key: list[str]
    columns: list[SourceColumnPublic]
    cursor_candidates: list[str] = Field(description="Columns that suit incremental syncs, best first")
    readable: bool
    problem: str | None = None


def connect_postgres(
    svc: Services,
    principal: Principal,
    *,
    name: str,
    host: str,
    port: int = 5432,
    database: str,
    user: str,
    password: str | None = None,
    password_env: str | None = None,
    sslmode: str = "prefer",
    schemas: list[str] | None = None,
) -> ConnectionCreated:
    """Store an encrypted PostgreSQL connection, then test it."""
    principal.require(Scope.MANAGE)
    check_identifier(name, what="connection name")
    if password is not None and password_env is not None:
        raise InvalidInput("give password or password_env, not both")
    if password_env is not None:
        if svc.settings.multi_tenant:
            raise PermissionDenied("password_env is only available in single-user mode; send the password instead")
        if password_env not in os.environ:
            raise InvalidInput(f"environment variable {password_env!r} is not set on the server")
        password = os.environ[password_env]
    config = {
        "host": host,
        "port": port,
        "database": database,
        "user": user,
        "password": password,
        "sslmode": sslmode,
        "schemas": schemas,
    }
    return create_connection(svc, principal, name=name, kind="postgres", config=config, action="connect_postgres")


def list_source_kinds(svc: Services, principal: Principal) -> list[SourceKindPublic]:
    """Every kind of source this server connects, with the JSON schema of its settings."""
    principal.require(Scope.READ)
    return [
        SourceKindPublic(
            kind=entry.name,
            description=entry.description,
            secrets=list(entry.secrets),
            config_schema=entry.config_schema(),
        )
        for entry in sorted(SOURCE_KINDS.values(), key=lambda k: k.name)
    ]


def connect_source(
    svc: Services,
    principal: Principal,
    *,
    kind: str,
    name: str,
    config: dict[str, Any],
    secrets: dict[str, str] | None = None,
) -> ConnectionCreated:
    """Store a connection of any kind (``config`` in clear, ``secrets`` encrypted), then test it.
    Each secret must be one of the kind's secret settings, and none may be given in ``config``."""
    principal.require(Scope.MANAGE)
    entry = _known_kind(kind)
    secrets = secrets or {}
    in_clear = sorted(set(config) & set(entry.secrets))
    if in_clear:
        raise InvalidInput(f"{', '.join(in_clear)} of a {kind} connection go in `secrets`, not in `config`")
    unknown = sorted(set(secrets) - set(entry.secrets))
    if unknown:
        expected = ", ".join(entry.secrets) or "none"
        raise InvalidInput(f"{', '.join(unknown)} is not a secret of a {kind} connection (its secrets: {expected})")
    unknown = sorted(set(config) - set(entry.config.model_fields))
    if unknown:
        raise InvalidInput(
            f"{', '.join(unknown)} is not a setting of a {kind} connection; list_source_kinds gives its schema"
        )
    if not all(isinstance(v, str) for v in secrets.values()):
        raise InvalidInput("secrets must be strings")
    return create_connection(
        svc, principal, name=name, kind=kind, config={**config, **secrets}, action="connect_source"
    )


def create_connection(
    svc: Services,
    principal: Principal,
    *,
    name: str,
    kind: str,
    config: dict[str, Any],
    action: str = "create_connection",
) -> ConnectionCreated:
    """Store a connection of any registered ``kind`` (its secrets encrypted, its host vetted), then
    test it. ``config`` holds the kind's fields, secrets included; ``action`` names it in the audit log."""
    principal.require(Scope.MANAGE)
    check_identifier(name, what="connection name")
    entry = _known_kind(kind)
    parsed = entry.parse(config)
    _vet_endpoint(svc, entry, parsed)
    connection_id = new_id()
    ciphertext = kid = None
    secrets = entry.secret_values(parsed)
    if secrets:
        ring = svc.keyring
        ciphertext = ring.encrypt_json(secrets, aad=secret_aad(principal.tenant_id, connection_id))
        kid = ring.active_kid
    public = entry.public(parsed)
    with svc.store.session(write_lock=True) as session:
        connections_repo.create_connection(
            session,
            tenant_id=principal.tenant_id,
            name=name,
            kind=kind,
            config=public,
            secret_ciphertext=ciphertext,
            secret_kid=kid,
            connection_id=connection_id,
        )
        audit_repo.record_audit(
            session,
            tenant_id=principal.tenant_id,
            subject=principal.subject,
            action=action,
            target=connection_id,
            meta={**public, "name": name, "kind": kind},  # the public config holds no secret
        )
    logger.info("stored %s connection %s (%s)", kind, connection_id, _redacted(parsed))
    test = test_connection(svc, principal, connection_id)
    return ConnectionCreated(**get_connection(svc, principal, connection_id).model_dump(), test=test)


def test_connection(svc: Services, principal: Principal, connection_id: str, /) -> ConnectionTest:
    principal.require(Scope.READ)
    source = open_source(svc, principal, connection_id)
    try:
        result = source.check()
    finally:
        source.close()
    with svc.store.session(write_lock=True) as session:
        connections_repo.record_connection_test(
            session, connection_id, tenant_id=principal.tenant_id, ok=result.ok, detail=result.diagnosis
        )
    return ConnectionTest(
        connection_id=connection_id,
        ok=result.ok,
        latency_ms=result.latency_ms,
        server_version=result.server_version,
        problem=result.problem,
        diagnosis=result.diagnosis,
    )


def list_connections(
    svc: Services, principal: Principal, *, after: tuple[str, str] | None = None, limit: int | None = None
) -> list[ConnectionPublic]:
    """The tenant's connections by ``(name, id)``; with ``after`` and ``limit``, one page of them
    plus the next connection if there is one (see :mod:`servicetsunami.api.pagination`)."""
    principal.require(Scope.READ)
    with svc.store.session() as session:
        rows = connections_repo.list_connections(session, tenant_id=principal.tenant_id, after=after, limit=limit)
        return [_public(c) for c in rows]


def get_connection(svc: Services, principal: Principal, connection_id: str, /) -> ConnectionPublic:
    principal.require(Scope.READ)
    with svc.store.session() as session:
        return _public(connections_repo.get_connection(session, connection_id, tenant_id=principal.tenant_id))


def list_source_tables(
    svc: Services, principal: Principal, connection_id: str, /, *, schema: str | None = None
) -> list[SourceTable]:
    principal.require(Scope.READ)
    source = open_source(svc, principal, connection_id)
    try:
        return [_table(s) for s in source.discover(schema=schema)]
    finally:
        source.close()


def open_source(svc: Services, principal: Principal, connection_id: str, /) -> Source:
    """The tenant's connection as a ready source (secrets decrypted in memory only, host vetted)."""
    with svc.store.session() as session:
        row = connections_repo.get_connection(session, connection_id, tenant_id=principal.tenant_id)
        kind, config_data, ciphertext = row.kind, dict(row.config), row.secret_ciphertext
    entry = source_kind(kind)
    secrets: dict[str, str] = {}
    if ciphertext is not None:
        secrets = svc.keyring.decrypt_json(ciphertext, aad=secret_aad(principal.tenant_id, connection_id))
    config = entry.parse(config_data, secrets)
    addresses = _vet_endpoint(svc, entry, config)
    context = SourceContext(
        hostaddr=addresses[0] if addresses else None,
        threads=svc.settings.query.threads,
        volume_file=lambda path: _landing_file(svc, principal, path),
        vet_host=lambda host, port: check_source_host(
            host,
            port,
            multi_tenant=svc.settings.multi_tenant,
            allowed_networks=svc.settings.source_allowed_networks,
        ),
        file_limits=StructureLimits.from_settings(svc.settings.ingest),
        file_stager=_file_stager(svc),
        google=GoogleUrls(
            api=svc.settings.sync.google_api_url,
            token=svc.settings.sync.google_token_url,
            docs=svc.settings.sync.google_docs_url,
        ),
    )
    return entry.factory(config, context)


def _file_stager(svc: Services) -> FileStager:
    """A landed file read into a stage by the same bounded reader process as an upload."""

    def stage(
        path: Path, /, *, file_name: str, options: FileOptions, output_dir: Path, extra: dict[str, Any]
    ) -> parsing.Parsed:
        return parsing.parse_to_parquet(
            path,
            file_name=file_name,
            options=options,
            output_dir=output_dir,
            extra=extra,
            full_sample=False,
            settings=svc.settings.ingest,
            workdir=parsing.workdir(svc.settings),
        )

    return stage


def _known_kind(kind: str) -> SourceKind[Any]:
    try:
        return source_kind(kind)
    except NotSupported as exc:  # asked for by the caller: their request is wrong, not the server
        raise InvalidInput(exc.message) from None


def _vet_endpoint(svc: Services, entry: SourceKind[Any], config: BaseModel) -> list[str]:
    """The addresses of the kind's host when every one may be reached; none for kinds without a host."""
    endpoint = entry.endpoint(config)
    if endpoint is None:
        return []
    host, port = endpoint
    return check_source_host(
        host,
        port,
        multi_tenant=svc.settings.multi_tenant,
        allowed_networks=svc.settings.source_allowed_networks,
    )


def _landing_file(svc: Services, principal: Principal, path: str) -> Path:
    local = svc.engine.local_path(principal.catalog, "bronze", LANDING_VOLUME, path)
    if local is None:
        raise NotSupported(
            f"the {svc.engine.kind} engine keeps its volumes remotely; files connections read the landing "
            "volume of an engine that keeps it on local disk"
        )
    return Path(local)


def _redacted(config: BaseModel) -> str:
    redacted = getattr(config, "redacted", None)
    return str(redacted()) if callable(redacted) else type(config).__name__


def _public(row: Connection) -> ConnectionPublic:
    return ConnectionPublic(
        id=row.id,
        name=row.name,
        kind=row.kind,
        config=dict(row.config),
        has_password=row.secret_ciphertext is not None,
        created_at=row.created_at,
        last_tested_at=row.last_tested_at,
        last_test_ok=row.last_test_ok,
        last_test_detail=row.last_test_detail,
    )


def _table(s: StreamInfo) -> SourceTable:
    return SourceTable(
        name=s.name,
        kind=s.kind,
        row_estimate=s.row_estimate,
        size_bytes=s.size_bytes,
        primary_key=s.primary_key,
        columns=[SourceColumnPublic(name=c.name, type=c.source_type, nullable=c.nullable) for c in s.columns],
        cursor_candidates=s.cursor_candidates,
        readable=s.readable,
        problem=s.problem,
    )
