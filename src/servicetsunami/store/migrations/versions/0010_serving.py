"""Agents, serving endpoints and chat conversations.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05

Written by hand against ``servicetsunami.store.models.Agent``, ``ServingEndpoint`` and ``Conversation``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def _json(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False)


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.id"], name=f"fk_{table}_tenant_id_tenants", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        _json("definition"),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        _json("metadata"),
        _tenant_fk("agents"),
        sa.PrimaryKeyConstraint("id", name="pk_agents"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_agents_tenant_id_name"),
    )
    op.create_table(
        "serving_endpoints",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("agent_id", sa.String(36), nullable=True),
        _json("config"),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("run_id", sa.String(36), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("rate_limit", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        _json("metadata"),
        sa.CheckConstraint("state IN ('NOT_READY', 'READY', 'FAILED')", name="ck_serving_endpoints_state"),
        sa.CheckConstraint("kind IN ('agent', 'model')", name="ck_serving_endpoints_kind"),
        _tenant_fk("serving_endpoints"),
        sa.PrimaryKeyConstraint("id", name="pk_serving_endpoints"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_serving_endpoints_tenant_id_name"),
    )
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("agent_name", sa.String(128), nullable=True),
        _json("messages"),
        _ts("created_at"),
        _ts("updated_at"),
        _json("metadata"),
        _tenant_fk("conversations"),
        sa.PrimaryKeyConstraint("id", name="pk_conversations"),
    )
    op.create_index("ix_conversations_tenant_id_subject", "conversations", ["tenant_id", "subject"])


def downgrade() -> None:
    op.drop_index("ix_conversations_tenant_id_subject", table_name="conversations")
    op.drop_table("conversations")
    op.drop_table("serving_endpoints")
    op.drop_table("agents")
