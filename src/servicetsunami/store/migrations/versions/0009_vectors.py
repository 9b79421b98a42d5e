"""Vector indexes per tenant (their rows live in Delta tables; this is their metadata).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05

Written by hand against ``servicetsunami.store.models.VectorIndex``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "vector_indexes",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("source_table", sa.String(400), nullable=False),
        sa.Column("text_column", sa.String(128), nullable=True),
        sa.Column("primary_key", sa.String(128), nullable=False),
        sa.Column("embedding_model", sa.String(300), nullable=True),
        sa.Column("embedding_column", sa.String(128), nullable=True),
        sa.Column("columns_to_sync", _json(), nullable=False),
        sa.Column("sync_mode", sa.String(16), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("source_version", sa.BigInteger(), nullable=True),
        sa.Column("table_version", sa.BigInteger(), nullable=True),
        sa.Column("last_run_id", sa.String(36), nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("metadata", _json(), nullable=False),
        sa.CheckConstraint("sync_mode IN ('triggered', 'continuous')", name="ck_vector_indexes_sync_mode"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_vector_indexes_tenant_id_tenants", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_vector_indexes"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_vector_indexes_tenant_id_name"),
    )


def downgrade() -> None:
    op.drop_table("vector_indexes")
