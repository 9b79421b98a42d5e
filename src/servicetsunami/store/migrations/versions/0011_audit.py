"""The audit log records where a write came from and how it ended: door, request id, outcome.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05

Written by hand against ``servicetsunami.store.models.AuditLog``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("door", sa.String(16), nullable=True))
        batch.add_column(sa.Column("request_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("outcome", sa.String(64), nullable=True))
    op.create_index("ix_audit_log_created_at", "audit_log", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_created_at", table_name="audit_log")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("outcome")
        batch.drop_column("request_id")
        batch.drop_column("door")
