"""Notebooks per tenant with their versions, and the executed notebook of each notebook run.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04

Written by hand against ``servicetsunami.store.models.Notebook``, ``NotebookVersion`` and
``NotebookRunOutput``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "notebooks",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.Column("metadata", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.CheckConstraint("language IN ('python', 'sql', 'scala', 'r')", name="ck_notebooks_language"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_notebooks_tenant_id_tenants", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_notebooks"),
        sa.UniqueConstraint("tenant_id", "path", name="uq_notebooks_tenant_id_path"),
    )
    op.create_table(
        "notebook_versions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("notebook_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        _ts("created_at"),
        sa.ForeignKeyConstraint(
            ["notebook_id"],
            ["notebooks.id"],
            name="fk_notebook_versions_notebook_id_notebooks",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_notebook_versions"),
        sa.UniqueConstraint("notebook_id", "version", name="uq_notebook_versions_notebook_id_version"),
    )
    op.create_table(
        "notebook_run_outputs",
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        _ts("created_at"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_notebook_run_outputs_run_id_runs", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_notebook_run_outputs_tenant_id_tenants", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", name="pk_notebook_run_outputs"),
    )


def downgrade() -> None:
    op.drop_table("notebook_run_outputs")
    op.drop_table("notebook_versions")
    op.drop_table("notebooks")
