"""Runs by (tenant, kind, state) and by (parent, state): the active task runs are read alone.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06

Written by hand against ``servicetsunami.store.models.Run``. Each start of a job's tasks counts the
tenant's queued and running task runs against ``jobs.max_parallel_tasks``; on SQLite that count
walked every task run the tenant ever had through ``ix_runs_tenant_id_kind_created_at`` (a 200-task
job adds 200 of them each run), so a task's start grew slower with the tenant's history. And each
round of a job run's coordinator reads its unfinished task runs, which walked all of the job run's
task runs through ``ix_runs_parent_id``; ``(parent_id, state)`` serves both that and every read by
parent alone, so it replaces it.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_runs_tenant_id_kind_state", "runs", ["tenant_id", "kind", "state"])
    op.create_index("ix_runs_parent_id_state", "runs", ["parent_id", "state"])
    op.drop_index("ix_runs_parent_id", table_name="runs")


def downgrade() -> None:
    op.create_index("ix_runs_parent_id", "runs", ["parent_id"])
    op.drop_index("ix_runs_parent_id_state", table_name="runs")
    op.drop_index("ix_runs_tenant_id_kind_state", table_name="runs")
