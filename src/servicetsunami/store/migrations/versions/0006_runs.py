"""One run model: the ``runs`` table replaces ``sync_runs``.

Every sync run already recorded becomes a run of kind ``sync`` with the same id (so ``syncs.last_run_id``
still points at it): its rows, bytes, batches and table version move into ``result`` (and ``progress``),
``pending`` becomes ``queued`` and ``cancelled`` becomes ``canceled``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

Written by hand against ``servicetsunami.store.models.Run``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATES = "'queued', 'running', 'succeeded', 'failed', 'canceled', 'timed_out', 'skipped'"


def _json(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=nullable)


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=True),
        sa.Column("parent_id", sa.String(36), nullable=True),
        sa.Column("resource_id", sa.String(64), nullable=True),
        sa.Column("dedupe_key", sa.String(200), nullable=True),
        _json("params"),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("timeout_seconds", sa.Float(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        _json("progress"),
        _json("result", nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("worker", sa.String(128), nullable=True),
        _ts("created_at"),
        _ts("started_at", nullable=True),
        _ts("heartbeat_at", nullable=True),
        _ts("finished_at", nullable=True),
        _ts("updated_at"),
        _json("metadata"),
        sa.CheckConstraint(f"state IN ({_STATES})", name="ck_runs_state"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_runs_tenant_id_tenants", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.UniqueConstraint("dedupe_key", name="uq_runs_dedupe_key"),
    )
    op.create_index("ix_runs_state_created_at", "runs", ["state", "created_at"])
    op.create_index("ix_runs_tenant_id_kind_created_at", "runs", ["tenant_id", "kind", "created_at"])
    op.create_index("ix_runs_resource_id_created_at", "runs", ["resource_id", "created_at"])
    op.create_index("ix_runs_parent_id", "runs", ["parent_id"])
    _copy_sync_runs()
    op.drop_index("ix_sync_runs_status_updated_at", table_name="sync_runs")
    op.drop_index("ix_sync_runs_sync_id_started_at", table_name="sync_runs")
    op.drop_table("sync_runs")


def _copy_sync_runs() -> None:
    bind = op.get_bind()
    old = sa.table(
        "sync_runs",
        *(sa.column(c) for c in ("id", "tenant_id", "sync_id", "status", "rows", "bytes", "batches")),
        *(sa.column(c) for c in ("table_version", "started_at", "updated_at", "finished_at", "error")),
        sa.column("progress", sa.JSON()),
    )
    runs = sa.table(
        "runs",
        *(sa.column(c) for c in ("id", "tenant_id", "kind", "subject", "resource_id", "state", "attempts")),
        *(sa.column(c) for c in ("max_attempts", "cancel_requested", "error", "error_code", "created_at")),
        *(sa.column(c) for c in ("started_at", "heartbeat_at", "finished_at", "updated_at")),
        *(sa.column(c, sa.JSON()) for c in ("params", "progress", "result", "metadata")),
    )
    states = {"pending": "queued", "cancelled": "canceled"}
    rows = []
    for r in bind.execute(sa.select(old)).mappings():
        state = states.get(r["status"], r["status"])
        counts = {"rows": r["rows"], "bytes": r["bytes"], "batches": r["batches"], "table_version": r["table_version"]}
        rows.append(
            {
                "id": r["id"],
                "tenant_id": r["tenant_id"],
                "kind": "sync",
                "subject": "migrated",
                "resource_id": r["sync_id"],
                "state": state,
                "attempts": 1,
                "max_attempts": 1,
                "cancel_requested": False,
                "error": r["error"],
                "error_code": "failed" if state == "failed" else None,
                "created_at": r["started_at"],
                "started_at": r["started_at"],
                "heartbeat_at": r["updated_at"],
                "finished_at": r["finished_at"],
                "updated_at": r["updated_at"],
                "params": {"sync_id": r["sync_id"]},
                "progress": dict(r["progress"] or {}),
                "result": counts if r["finished_at"] is not None else None,
                "metadata": {},
            }
        )
    if rows:
        op.bulk_insert(runs, rows)


def downgrade() -> None:
    """Back to ``sync_runs``: sync runs are copied back; runs of other kinds are dropped."""
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
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_sync_runs_tenant_id_tenants", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["sync_id"], ["syncs.id"], name="fk_sync_runs_sync_id_syncs", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_sync_runs"),
    )
    op.create_index("ix_sync_runs_sync_id_started_at", "sync_runs", ["sync_id", "started_at"])
    op.create_index("ix_sync_runs_status_updated_at", "sync_runs", ["status", "updated_at"])
    bind = op.get_bind()
    runs = sa.table(
        "runs",
        *(sa.column(c) for c in ("id", "tenant_id", "kind", "resource_id", "state", "error", "created_at")),
        *(sa.column(c) for c in ("started_at", "finished_at", "updated_at")),
        *(sa.column(c, sa.JSON()) for c in ("progress", "result")),
    )
    statuses = {"queued": "pending", "canceled": "cancelled", "timed_out": "failed", "skipped": "cancelled"}
    rows = []
    for r in bind.execute(sa.select(runs).where(runs.c.kind == "sync")).mappings():
        counts = dict(r["result"] or r["progress"] or {})
        rows.append(
            {
                "id": r["id"],
                "tenant_id": r["tenant_id"],
                "sync_id": r["resource_id"],
                "status": statuses.get(r["state"], r["state"]),
                "rows": int(counts.get("rows") or 0),
                "bytes": int(counts.get("bytes") or 0),
                "batches": int(counts.get("batches") or 0),
                "table_version": counts.get("table_version"),
                "started_at": r["started_at"] or r["created_at"],
                "updated_at": r["updated_at"],
                "finished_at": r["finished_at"],
                "error": r["error"],
                "progress": dict(r["progress"] or {}),
                "metadata": {},
            }
        )
    if rows:
        old = sa.table(
            "sync_runs",
            *(sa.column(c) for c in ("id", "tenant_id", "sync_id", "status", "rows", "bytes", "batches")),
            *(sa.column(c) for c in ("table_version", "started_at", "updated_at", "finished_at", "error")),
            *(sa.column(c, sa.JSON()) for c in ("progress", "metadata")),
        )
        op.bulk_insert(old, rows)
    op.drop_index("ix_runs_parent_id", table_name="runs")
    op.drop_index("ix_runs_resource_id_created_at", table_name="runs")
    op.drop_index("ix_runs_tenant_id_kind_created_at", table_name="runs")
    op.drop_index("ix_runs_state_created_at", table_name="runs")
    op.drop_table("runs")
