"""Connections (credentials encrypted), syncs and sync runs.

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-29

Written by hand against ``servicetsunami.store.models``; constraint names follow the naming
convention in that module.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False)


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.id"], name=f"fk_{table}_tenant_id_tenants", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "connections",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        _json("config"),
        sa.Column("secret_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("secret_kid", sa.String(64), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("last_tested_at", nullable=True),
        sa.Column("last_test_ok", sa.Boolean(), nullable=True),
        sa.Column("last_test_detail", sa.Text(), nullable=True),
        _json("metadata"),
        sa.CheckConstraint("(secret_ciphertext IS NULL) = (secret_kid IS NULL)", name="ck_connections_secret_pair"),
        _tenant_fk("connections"),
        sa.PrimaryKeyConstraint("id", name="pk_connections"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_connections_tenant_id_name"),
    )
    op.create_table(
        "syncs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("connection_id", sa.String(36), nullable=False),
        sa.Column("source_table", sa.String(512), nullable=False),
        sa.Column("target_table", sa.String(300), nullable=False),
        sa.Column("mode", sa.String(32), nullable=False),
        sa.Column("cursor_column", sa.String(128), nullable=True),
        _json("primary_key"),
        _json("state"),
        sa.Column("last_run_id", sa.String(36), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        _json("metadata"),
        sa.CheckConstraint("mode IN ('full_refresh', 'incremental_append', 'incremental_merge')", name="ck_syncs_mode"),
        _tenant_fk("syncs"),
        sa.ForeignKeyConstraint(
            ["connection_id"], ["connections.id"], name="fk_syncs_connection_id_connections", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_syncs"),
        sa.UniqueConstraint("tenant_id", "target_table", name="uq_syncs_tenant_id_target_table"),
    )
    op.create_index("ix_syncs_connection_id", "syncs", ["connection_id"])
    op.create_table(
        "sync_runs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("sync_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("batches", sa.Integer(), nullable=False),
        sa.Column("table_version", sa.BigInteger(), nullable=True),
        _ts("started_at"),
        _ts("updated_at"),
        _ts("finished_at", nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _json("progress"),
        _json("metadata"),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')", name="ck_sync_runs_status"
        ),
        _tenant_fk("sync_runs"),
        sa.ForeignKeyConstraint(["sync_id"], ["syncs.id"], name="fk_sync_runs_sync_id_syncs", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_sync_runs"),
    )
    op.create_index("ix_sync_runs_sync_id_started_at", "sync_runs", ["sync_id", "started_at"])
    op.create_index("ix_sync_runs_status_updated_at", "sync_runs", ["status", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_sync_runs_status_updated_at", table_name="sync_runs")
    op.drop_index("ix_sync_runs_sync_id_started_at", table_name="sync_runs")
    op.drop_table("sync_runs")
    op.drop_index("ix_syncs_connection_id", table_name="syncs")
    op.drop_table("syncs")
    op.drop_table("connections")
