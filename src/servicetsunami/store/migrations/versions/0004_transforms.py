"""Transforms (silver specs, gold definitions) and lineage edges.

Revision ID: 0004
Revises: 0003
Create Date: 2025-12-01

Written by hand against ``servicetsunami.store.models``; constraint names follow the naming
convention in that module. The tenant setting ``mask_pii`` lives in ``tenants.metadata``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
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
        "transforms",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.String(300), nullable=False),
        sa.Column("materialize", sa.String(16), nullable=False),
        _json("spec"),
        sa.Column("sql", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("last_run_at", nullable=True),
        sa.Column("last_version", sa.BigInteger(), nullable=True),
        sa.Column("last_rows", sa.BigInteger(), nullable=True),
        _json("metadata"),
        sa.CheckConstraint("kind IN ('silver', 'gold')", name="ck_transforms_kind"),
        sa.CheckConstraint("materialize IN ('table', 'view')", name="ck_transforms_materialize"),
        _tenant_fk("transforms"),
        sa.PrimaryKeyConstraint("id", name="pk_transforms"),
        sa.UniqueConstraint("tenant_id", "target", name="uq_transforms_tenant_id_target"),
    )
    op.create_table(
        "lineage_edges",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("transform_id", sa.String(36), nullable=False),
        sa.Column("upstream", sa.String(300), nullable=False),
        sa.Column("downstream", sa.String(300), nullable=False),
        sa.Column("upstream_version", sa.BigInteger(), nullable=True),
        _tenant_fk("lineage_edges"),
        sa.ForeignKeyConstraint(
            ["transform_id"], ["transforms.id"], name="fk_lineage_edges_transform_id_transforms", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_lineage_edges"),
        sa.UniqueConstraint("transform_id", "upstream", name="uq_lineage_edges_transform_id_upstream"),
    )
    op.create_index("ix_lineage_edges_tenant_id_upstream", "lineage_edges", ["tenant_id", "upstream"])
    op.create_index("ix_lineage_edges_tenant_id_downstream", "lineage_edges", ["tenant_id", "downstream"])


def downgrade() -> None:
    op.drop_index("ix_lineage_edges_tenant_id_downstream", table_name="lineage_edges")
    op.drop_index("ix_lineage_edges_tenant_id_upstream", table_name="lineage_edges")
    op.drop_table("lineage_edges")
    op.drop_table("transforms")
