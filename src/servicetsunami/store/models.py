"""The system-of-record tables, as SQLAlchemy 2 declarative models.

The same models run on SQLite (the embedded default) and PostgreSQL, so they stick to portable
types: string UUID primary keys generated in Python, :class:`UTCDateTime` for every timestamp, and a
JSON ``metadata`` column on each table (mapped to the attribute ``meta``, because ``metadata`` is
reserved on declarative classes; JSONB on PostgreSQL). Constraint names follow one naming
convention so that later Alembic migrations (batch mode on SQLite) can refer to them.

Schema changes go through a new revision in ``store/migrations/versions``; these models are the
target that ``alembic revision --autogenerate`` compares against.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.mutable import MutableDict
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ROLES = ("admin", "engineer", "analyst")
SYNC_MODES = ("full_refresh", "incremental_append", "incremental_merge")
RUN_STATES = ("queued", "running", "succeeded", "failed", "canceled", "timed_out", "skipped")
NOTEBOOK_LANGUAGES = ("python", "sql", "scala", "r")
FINISHED_RUN_STATES = frozenset({"succeeded", "failed", "canceled", "timed_out", "skipped"})


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC (the only kind of datetime the store accepts)."""
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp that always comes back as an aware UTC ``datetime``.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so values are normalised to UTC
    before they are written and tagged as UTC when read. Naive datetimes are refused rather than
    guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use an aware datetime (UTC)")
        value = value.astimezone(UTC)
        # SQLite would keep the "+00:00" suffix in some paths and not others; store it bare.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# In-place changes to the top-level dict are tracked; reassign the attribute for nested changes.
MetaJSON = MutableDict.as_mutable(JSON().with_variant(JSONB(), "postgresql"))
# Plain JSON (lists, or values only ever replaced whole).
PlainJSON = JSON().with_variant(JSONB(), "postgresql")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class _MetaMixin:
    """The JSON ``metadata`` column every table has, for facts that do not deserve a column yet."""

    meta: Mapped[dict[str, Any]] = mapped_column("metadata", MetaJSON, nullable=False, default=dict)


class Tenant(_MetaMixin, Base):
    """A customer: owns one lakehouse catalog, its keys, datasets and everything else."""

    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(48), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)


class ApiKey(_MetaMixin, Base):
    """An API key of one tenant. Only the SHA-256 of the key is kept; ``prefix`` is its public part."""

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'engineer', 'analyst')", name="role"),
        Index("ix_api_keys_tenant_id", "tenant_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), unique=True, nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # The key's own tool set (servicetsunami.toolsets.ToolSet.to_json); None: every tool of its role.
    tool_set: Mapped[dict[str, Any] | None] = mapped_column(PlainJSON, nullable=True)

    def is_active(self, now: datetime | None = None) -> bool:
        now = now or utcnow()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class Dataset(_MetaMixin, Base):
    """A table that was created from an uploaded file (and where its rows came from).

    ``meta`` holds the columns' original names, the reader options used and, for Excel, the sheets.
    """

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(128), nullable=False)
    table_schema: Mapped[str] = mapped_column(String(128), nullable=False)
    table_name: Mapped[str] = mapped_column(String(128), nullable=False)
    source_kind: Mapped[str] = mapped_column(String(32), nullable=False, default="file")
    source_name: Mapped[str] = mapped_column(String(512), nullable=False)
    landing_path: Mapped[str] = mapped_column(Text, nullable=False)
    format: Mapped[str] = mapped_column(String(32), nullable=False)
    rows: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    table_version: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow, onupdate=utcnow)


class Connection(_MetaMixin, Base):
    """A tenant's saved connection to a source (a PostgreSQL server, ...).

    ``config`` holds what may be shown (host, port, database, user, sslmode, schemas) and never a
    secret. The credentials live only in ``secret_ciphertext``, encrypted by the key ring
    (:mod:`servicetsunami.security.secrets`) with the tenant and connection ids as associated data;
    ``secret_kid`` names the key, so rotation finds the rows still under an old key. Both are null
    for a connection without credentials.
    """

    __tablename__ = "connections"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name"),
        CheckConstraint("(secret_ciphertext IS NULL) = (secret_kid IS NULL)", name="secret_pair"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(128), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    config: Mapped[dict[str, Any]] = mapped_column(MetaJSON, nullable=False, default=dict)
    secret_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    secret_kid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow, onupdate=utcnow)
    last_tested_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_test_ok: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    last_test_detail: Mapped[str | None] = mapped_column(Text, nullable=True)


class Sync(_MetaMixin, Base):
    """One source table landing in one bronze table of a tenant; ``state`` holds the saved cursor.

    ``target_table`` (``schema.table``) is unique per tenant, so the sync's id stays stable for the
    table it writes (the exactly-once commits are keyed by it). ``last_run_id`` points at the newest
    :class:`Run` (kind ``sync``); it is not a foreign key, to keep the two tables free of a cycle.
    """

    __tablename__ = "syncs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "target_table"),
        CheckConstraint(_in("mode", SYNC_MODES), name="mode"),
        Index("ix_syncs_connection_id", "connection_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)
    connection_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("connections.id", ondelete="CASCADE"), nullable=False
    )
    source_table: Mapped[str] = mapped_column(String(512), nullable=False)
    target_table: Mapped[str] = mapped_column(String(300), nullable=False)
    mode: Mapped[str] = mapped_column(String(32), nullable=False)
    cursor_column: Mapped[str | None] = mapped_column(String(128), nullable=True)
    primary_key: Mapped[list[str]] = mapped_column(PlainJSON, nullable=False, default=list)
    state: Mapped[dict[str, Any]] = mapped_column(MetaJSON, nullable=False, default=dict)
    last_run_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow, onupdate=utcnow)


class Run(_MetaMixin, Base):
    """Anything that takes time: a sync, a mirror replay, a job run and its task runs, a notebook run...

    A run is ``queued`` until a worker claims it (``worker``, ``attempts`` + 1, ``state`` running),
    which then beats (``heartbeat_at``) while it works; a run whose beats stopped is ended or
    re-queued by the next sweep. ``cancel_requested`` is how anyone asks the worker to stop it.
    ``tenant_id`` is null for the service's own runs (mirror replays). ``resource_id`` names what the
    run is of (a sync, a job), ``parent_id`` the run it belongs to (a task run's job run), and
    ``dedupe_key`` is set while a run that must not be queued twice is active (unique), cleared when it
    ends. Not a foreign key to itself, to keep deletes simple.
    """

    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint(_in("state", RUN_STATES), name="state"),
        UniqueConstraint("dedupe_key"),
        Index("ix_runs_state_created_at", "state", "created_at"),
        Index("ix_runs_tenant_id_kind_created_at", "tenant_id", "kind", "created_at"),
        Index("ix_runs_resource_id_created_at", "resource_id", "created_at"),
        Index("ix_runs_resource_id_state", "resource_id", "state"),  # a job's active runs (0015)
        Index("ix_runs_tenant_id_kind_state", "tenant_id", "kind", "state"),  # a tenant's active task runs (0016)
        Index("ix_runs_parent_id_state", "parent_id", "state"),  # a job run's unfinished task runs (0016)
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=True
    )
    kind: Mapped[str] = mapped_column(String(64), nullable=False)
    subject: Mapped[str] = mapped_column(String(255), nullable=False)
    role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    parent_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    resource_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(PlainJSON, nullable=False, default=dict)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="queued")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    timeout_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    progress: Mapped[dict[str, Any]] = mapped_column(PlainJSON, nullable=False, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(PlainJSON, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow, onupdate=utcnow)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_RUN_STATES


class Job(_MetaMixin, Base):
    """A job (REST: pipeline) of a tenant: a DAG of tasks, kept as its validated definition.

    ``definition`` is the whole job as the service normalised it (tasks, parameters, limits);
    ``version`` grows by one on every update, and a job run records the version it ran. The schedule
    (Quartz ``schedule_cron`` in ``schedule_timezone``) is copied out of the definition into columns so
    the ticker can find due jobs in SQL: ``next_fire_at`` is the next tick, advanced by a
    compare-and-set by exactly one worker, which queues that tick's run in the same transaction.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name"),
        Index("ix_jobs_next_fire_at", "next_fire_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    definition: Mapped[dict[str, Any]] = mapped_column(PlainJSON, nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    schedule_cron: Mapped[str | None] = mapped_column(String(200), nullable=True)
    schedule_timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    paused: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    next_fire_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_by: Mapped[str] = mapped_column(String(255), nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow, onupdate=utcnow)


class AuditLog(_MetaMixin, Base):
    """Who did what to which target. Rows outlive their tenant (``tenant_id`` is then null)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_tenant_id_created_at", "tenant_id", "created_at"),
        Index("ix_audit_log_created_at", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("tenants.id", ondelete="SET NULL"), nullable=True
    )
    subject: Mapped[str] = mapped_column(String(200), nullable=False)
    action: Mapped[str] = mapped_column(String(100), nullable=False)
    target: Mapped[str | None] = mapped_column(String(512), nullable=True)
    # Where the action came from (rest, mcp; null: the service itself), its request and how it ended
    # (ok or an error code; null for entries the services write as part of the change itself).
    door: Mapped[str | None] = mapped_column(String(16), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)


# -- Transforms: silver specs, gold definitions and the lineage edges they create ------------------

TRANSFORM_KINDS = ("silver", "gold")
MATERIALIZATIONS = ("table", "view")


class Transform(_MetaMixin, Base):
    """How one silver or gold table is built: a cleaning spec over a bronze table (silver) or a SQL
    definition over silver and gold (gold), and the outcome of its last run.

    ``target`` is ``schema.table``, unique per tenant. ``sql`` is the Databricks statement (for silver
    the one compiled by the last run). A gold ``view`` has no Delta table: queries expand it.
    """

    __tablename__ = "transforms"
    __table_args__ = (
        UniqueConstraint("tenant_id", "target"),
        CheckConstraint(_in("kind", TRANSFORM_KINDS), name="kind"),
        CheckConstraint(_in("materialize", MATERIALIZATIONS), name="materialize"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    target: Mapped[str] = mapped_column(String(300), nullable=False)
    materialize: Mapped[str] = mapped_column(String(16), nullable=False, default="table")
    spec: Mapped[dict[str, Any]] = mapped_column(MetaJSON, nullable=False, default=dict)
    sql: Mapped[str] = mapped_column(Text, nullable=False)
    created_by: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow, onupdate=utcnow)
    last_run_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_version: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_rows: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class LineageEdge(Base):
    """``upstream`` (``schema.table``) feeds ``downstream`` through a transform; replaced on each run."""

    __tablename__ = "lineage_edges"
    __table_args__ = (
        UniqueConstraint("transform_id", "upstream"),
        Index("ix_lineage_edges_tenant_id_upstream", "tenant_id", "upstream"),
        Index("ix_lineage_edges_tenant_id_downstream", "tenant_id", "downstream"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)
    transform_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("transforms.id", ondelete="CASCADE"), nullable=False
    )
    upstream: Mapped[str] = mapped_column(String(300), nullable=False)
    downstream: Mapped[str] = mapped_column(String(300), nullable=False)
    upstream_version: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class PiiFlags(Base):
    """The personal data found in one table of a tenant (``schema.table``): column -> kind. A table
    checked and found clean has a row with no flags; ``pending`` when its last check failed (it is
    checked again at its next read). One row per table: a write costs the same however many tables
    the tenant has."""

    __tablename__ = "pii_flags"

    tenant_id: Mapped[str] = mapped_column(String(36), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    table_name: Mapped[str] = mapped_column(String(300), primary_key=True)
    flags: Mapped[dict[str, str]] = mapped_column(PlainJSON, nullable=False, default=dict)
    pending: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    checked_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)


# -- Mirror (outbox of writes copied to a second engine) ----------------------------------------

MIRROR_STATUSES = ("pending", "synced", "failed")


class MirrorJob(_MetaMixin, Base):
    """One local write to copy to the mirror engine (``TSUNAMI_MIRROR``): the outbox.

    ``local_version`` is the local table version the write produced; replaying the job brings the
    mirror's copy of the table up to that version (every local commit after the last one the mirror
    recorded, each applied at most once). ``error`` holds the last failure while a job is retried.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint(_in("status", MIRROR_STATUSES), name="status"),
        Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_outbox_catalog_schema_name_table_name", "catalog", "schema_name", "table_name"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    target: Mapped[str] = mapped_column(String(32), nullable=False)
    catalog: Mapped[str] = mapped_column(String(128), nullable=False)
    schema_name: Mapped[str] = mapped_column(String(128), nullable=False)
    table_name: Mapped[str] = mapped_column(String(128), nullable=False)
    mode: Mapped[str] = mapped_column(String(16), nullable=False)
    local_version: Mapped[int] = mapped_column(BigInteger, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    next_attempt_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow, onupdate=utcnow)
    synced_at: Mapped[datetime | None] = mapped_column(nullable=True)


# ---------------------------------------------------------------------------------------------
# identity: people who log in, and their refresh tokens


class User(_MetaMixin, Base):
    """A person who logs in with an e-mail address and a password, inside one tenant.

    ``email`` is unique across tenants (lower-cased), so logging in needs no tenant name. Only the
    argon2 hash of the password is kept. ``is_platform_admin`` may create tenants.
    """

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'engineer', 'analyst')", name="role"),
        Index("ix_users_tenant_id", "tenant_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)
    email: Mapped[str] = mapped_column(String(320), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    is_platform_admin: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow, onupdate=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(nullable=True)
    disabled_at: Mapped[datetime | None] = mapped_column(nullable=True)


class RefreshToken(_MetaMixin, Base):
    """One refresh token (only its SHA-256 is kept). Using it revokes it and issues the next one of
    the same ``family_id``; presenting a revoked token again revokes the whole family (a stolen
    token was replayed)."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (
        Index("ix_refresh_tokens_user_id", "user_id"),
        Index("ix_refresh_tokens_family_id", "family_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)
    user_id: Mapped[str] = mapped_column(String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    family_id: Mapped[str] = mapped_column(String(36), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    replaced_by: Mapped[str | None] = mapped_column(String(36), nullable=True)


class Notebook(_MetaMixin, Base):
    """A notebook of a tenant at a workspace ``path`` (``/folder/sub/name``, unique per tenant).

    Its content lives in :class:`NotebookVersion` rows, one per save; ``version`` is the newest.
    Folders are the paths' prefixes: there is no folder row.
    """

    __tablename__ = "notebooks"
    __table_args__ = (
        UniqueConstraint("tenant_id", "path"),
        CheckConstraint(_in("language", NOTEBOOK_LANGUAGES), name="language"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)
    path: Mapped[str] = mapped_column(String(500), nullable=False)
    language: Mapped[str] = mapped_column(String(16), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_by: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow, onupdate=utcnow)


class NotebookVersion(Base):
    """One saved state of a notebook: its Jupyter JSON (nbformat 4), who saved it and when."""

    __tablename__ = "notebook_versions"
    __table_args__ = (UniqueConstraint("notebook_id", "version"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    notebook_id: Mapped[str] = mapped_column(String(36), ForeignKey("notebooks.id", ondelete="CASCADE"), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    content: Mapped[str] = mapped_column(Text, nullable=False)
    created_by: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)


class NotebookRunOutput(Base):
    """The executed notebook of a ``notebook_run`` run (Jupyter JSON with its outputs), kept with it."""

    __tablename__ = "notebook_run_outputs"

    run_id: Mapped[str] = mapped_column(String(36), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)
    content: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)


VECTOR_SYNC_MODES = ("triggered", "continuous")


class VectorIndex(_MetaMixin, Base):
    """A vector index of a tenant: a Delta table ``<catalog>.vectors.<name>`` built from a source
    table's text column (or its own vector column), kept in step with the source's versions.

    ``source_version`` is the source table's version the index table holds; ``table_version`` the
    index table's own version after that sync. ``embedding_model`` is None for self-managed vectors
    (``embedding_column``)."""

    __tablename__ = "vector_indexes"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name"),
        CheckConstraint(_in("sync_mode", VECTOR_SYNC_MODES), name="sync_mode"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(128), nullable=False)
    source_table: Mapped[str] = mapped_column(String(400), nullable=False)
    text_column: Mapped[str | None] = mapped_column(String(128), nullable=True)
    primary_key: Mapped[str] = mapped_column(String(128), nullable=False)
    embedding_model: Mapped[str | None] = mapped_column(String(300), nullable=True)
    embedding_column: Mapped[str | None] = mapped_column(String(128), nullable=True)
    columns_to_sync: Mapped[list[str]] = mapped_column(PlainJSON, nullable=False, default=list)
    sync_mode: Mapped[str] = mapped_column(String(16), nullable=False, default="triggered")
    dim: Mapped[int | None] = mapped_column(Integer, nullable=True)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="building")
    row_count: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    source_version: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    table_version: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_run_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_by: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow, onupdate=utcnow)


ENDPOINT_STATES = ("NOT_READY", "READY", "FAILED")
ENDPOINT_KINDS = ("agent", "model")


class Agent(_MetaMixin, Base):
    """An agent of a tenant: instructions, a model and tools, kept as its validated ``definition``
    (see ``services/serving/agents.py``); ``version`` grows by one on every update."""

    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(128), nullable=False)
    definition: Mapped[dict[str, Any]] = mapped_column(PlainJSON, nullable=False, default=dict)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_by: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow, onupdate=utcnow)


class ServingEndpoint(_MetaMixin, Base):
    """A serving endpoint of a tenant: the agent definition it serves (a copy taken at deployment,
    in ``config``), its state (Databricks' ``NOT_READY | READY`` plus ``FAILED`` with ``error``), the
    deployment run, its rate limit, and its usage counters in ``metadata``."""

    __tablename__ = "serving_endpoints"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name"),
        CheckConstraint(_in("state", ENDPOINT_STATES), name="state"),
        CheckConstraint(_in("kind", ENDPOINT_KINDS), name="kind"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(128), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    agent_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    config: Mapped[dict[str, Any]] = mapped_column(PlainJSON, nullable=False, default=dict)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="NOT_READY")
    run_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    rate_limit: Mapped[str] = mapped_column(String(64), nullable=False)
    created_by: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow, onupdate=utcnow)


class Conversation(_MetaMixin, Base):
    """A chat conversation of one person (``subject``) of a tenant with an agent (None: the default
    agent); ``messages`` holds the turns in the chat-completions shape."""

    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_tenant_id_subject", "tenant_id", "subject"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)
    subject: Mapped[str] = mapped_column(String(255), nullable=False)
    agent_name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    messages: Mapped[list[dict[str, Any]]] = mapped_column(PlainJSON, nullable=False, default=list)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow, onupdate=utcnow)


WEBHOOK_DELIVERY_STATUSES = ("pending", "delivering", "succeeded", "failed")


class Webhook(_MetaMixin, Base):
    """A tenant's webhook subscription: where run state changes are posted (``url``), which ones
    (``events``: patterns such as ``job_run.failed``, ``sync.*``, ``*.failed``), and the signing
    secret, encrypted by the key ring like connection credentials (``secret_ciphertext`` with the
    tenant and webhook ids as associated data, ``secret_kid`` naming the key)."""

    __tablename__ = "webhooks"
    __table_args__ = (Index("ix_webhooks_tenant_id_created_at", "tenant_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)
    url: Mapped[str] = mapped_column(Text, nullable=False)
    events: Mapped[list[str]] = mapped_column(PlainJSON, nullable=False, default=list)
    description: Mapped[str] = mapped_column(String(500), nullable=False, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    secret_ciphertext: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    secret_kid: Mapped[str] = mapped_column(String(64), nullable=False)
    created_by: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow, onupdate=utcnow)


class WebhookDelivery(_MetaMixin, Base):
    """One event to post to one webhook: the webhooks outbox and its delivery log.

    Queued in the same transaction as the run state change it reports, with its body as sent
    (``payload``, signed as is on every attempt; ``id`` is the ``webhook-id`` header, the same on every
    attempt). A worker claims a due ``pending`` delivery (``delivering``, ``claimed_by`` and
    ``claimed_until``: a claim whose worker died expires), and each attempt is appended to
    ``attempt_log`` (time, status code, duration, error class) before the delivery ends
    ``succeeded``, goes back to ``pending`` for its next attempt, or ends ``failed``."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(_in("status", WEBHOOK_DELIVERY_STATUSES), name="status"),
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_webhook_id_created_at", "webhook_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)
    webhook_id: Mapped[str] = mapped_column(String(36), ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False)
    event_type: Mapped[str] = mapped_column(String(128), nullable=False)
    run_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    payload: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    max_attempts: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: webhooks.max_attempts
    next_attempt_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    attempt_log: Mapped[list[dict[str, Any]]] = mapped_column(PlainJSON, nullable=False, default=list)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)


OAUTH_CLIENT_SOURCES = ("registered", "document")


class OAuthClient(_MetaMixin, Base):
    """An OAuth client of the MCP door: registered by itself (RFC 7591, ``source`` ``registered``, a
    random ``id``) or described by a client ID metadata document (``source`` ``document``: ``id`` is
    the document's https URL, ``fetched_at`` says when it was last read). Not a tenant's: any user of
    any tenant may let it act for them. A client secret is kept as its SHA-256 only; ``info`` is the
    registration record without it."""

    __tablename__ = "oauth_clients"
    __table_args__ = (CheckConstraint(_in("source", OAUTH_CLIENT_SOURCES), name="source"),)

    id: Mapped[str] = mapped_column(String(500), primary_key=True)
    source: Mapped[str] = mapped_column(String(16), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    secret_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    info: Mapped[dict[str, Any]] = mapped_column(PlainJSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    fetched_at: Mapped[datetime | None] = mapped_column(nullable=True)


class OAuthGrant(_MetaMixin, Base):
    """A user's consent that a client acts for them (with the user's tenant and role) at ``resource``.
    Its authorization codes and refresh tokens hang off it; revoking it ends them and the access
    tokens that name it."""

    __tablename__ = "oauth_grants"
    __table_args__ = (
        Index("ix_oauth_grants_tenant_id_created_at", "tenant_id", "created_at"),
        Index("ix_oauth_grants_user_id", "user_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)
    user_id: Mapped[str] = mapped_column(String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    client_id: Mapped[str] = mapped_column(
        String(500), ForeignKey("oauth_clients.id", ondelete="CASCADE"), nullable=False
    )
    resource: Mapped[str] = mapped_column(Text, nullable=False)
    scopes: Mapped[list[str]] = mapped_column(PlainJSON, nullable=False, default=list)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


class OAuthCode(_MetaMixin, Base):
    """An authorization code of a grant (its SHA-256 only): used once, before ``expires_at``, by the
    client that asked for it with the PKCE verifier of ``code_challenge``."""

    __tablename__ = "oauth_codes"
    __table_args__ = (Index("ix_oauth_codes_grant_id", "grant_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    grant_id: Mapped[str] = mapped_column(String(36), ForeignKey("oauth_grants.id", ondelete="CASCADE"), nullable=False)
    code_challenge: Mapped[str] = mapped_column(String(128), nullable=False)
    redirect_uri: Mapped[str] = mapped_column(Text, nullable=False)
    redirect_uri_explicit: Mapped[bool] = mapped_column(Boolean, nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(nullable=True)


class OAuthRefreshToken(_MetaMixin, Base):
    """A refresh token of a grant (its SHA-256 only). Using it revokes it and issues the next one;
    presenting a revoked one again revokes the grant (a stolen token was replayed)."""

    __tablename__ = "oauth_refresh_tokens"
    __table_args__ = (Index("ix_oauth_refresh_tokens_grant_id", "grant_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    grant_id: Mapped[str] = mapped_column(String(36), ForeignKey("oauth_grants.id", ondelete="CASCADE"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    replaced_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
