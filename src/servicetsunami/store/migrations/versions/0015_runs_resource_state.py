"""Runs by (resource, state): counting a job's or a sync's active runs reads only those.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05

Written by hand against ``servicetsunami.store.models.Run``. Counting the active runs of one job
(each start checks its ``max_concurrent_runs``) walked every run the job ever had through
``ix_runs_resource_id_created_at``: about 4 ms at 10,000 runs, a day and a bit of a schedule firing
every 10 s.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_runs_resource_id_state", "runs", ["resource_id", "state"])


def downgrade() -> None:
    op.drop_index("ix_runs_resource_id_state", table_name="runs")
