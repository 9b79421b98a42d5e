"""Jobs (REST: pipelines): the ``jobs`` table. Job runs and task runs are rows of ``runs``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04

Written by hand against ``servicetsunami.store.models.Job``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=nullable)


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        _json("definition"),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("schedule_cron", sa.String(200), nullable=True),
        sa.Column("schedule_timezone", sa.String(64), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        _ts("next_fire_at", nullable=True),
        sa.Column("created_by", sa.String(255), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        _json("metadata"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_jobs_tenant_id_tenants", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_jobs_tenant_id_name"),
    )
    op.create_index("ix_jobs_next_fire_at", "jobs", ["next_fire_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_next_fire_at", table_name="jobs")
    op.drop_table("jobs")
