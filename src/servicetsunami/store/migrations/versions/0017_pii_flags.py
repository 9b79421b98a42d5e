"""Each table's personal-data flags in a row of their own, out of the tenant's settings.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06

Written by hand against ``servicetsunami.store.models.PiiFlags``. The flags of every table of a
tenant were one JSON value in its settings (``pii_flags``: ``schema.table`` -> column -> kind, with
an empty column name marking a failed check): each table written read and rewrote all of them, and
each query's masking setting was read from the same JSON. At 2,000 tables, recording one table's
check took 2.7 ms. The upgrade moves them into rows; the downgrade moves them back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
_KEY = "pii_flags"
_PENDING = ""  # the column name that marked a failed check in the settings' JSON


def _tenants() -> sa.TableClause:
    return sa.table("tenants", sa.column("id", sa.String(36)), sa.column("metadata", _JSON))


def _flags() -> sa.TableClause:
    return sa.table(
        "pii_flags",
        sa.column("tenant_id", sa.String(36)),
        sa.column("table_name", sa.String(300)),
        sa.column("flags", _JSON),
        sa.column("pending", sa.Boolean()),
        sa.column("checked_at", sa.DateTime(timezone=True)),
    )


def upgrade() -> None:
    op.create_table(
        "pii_flags",
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("table_name", sa.String(300), nullable=False),
        sa.Column("flags", _JSON, nullable=False),
        sa.Column("pending", sa.Boolean(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_pii_flags_tenant_id_tenants", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "table_name", name="pk_pii_flags"),
    )
    bind = op.get_bind()
    now = datetime.now(UTC)
    if bind.dialect.name == "sqlite":
        now = now.replace(tzinfo=None)  # as the store's timestamps are kept there
    tenants = _tenants()
    for tenant_id, meta in bind.execute(sa.select(tenants.c.id, tenants.c.metadata)).all():
        settings = dict((meta or {}).get("settings") or {})
        known: dict[str, Any] = dict(settings.pop(_KEY, None) or {})
        if not known:
            continue
        rows = [
            {
                "tenant_id": tenant_id,
                "table_name": table,
                "flags": {c: k for c, k in dict(entry or {}).items() if c != _PENDING},
                "pending": _PENDING in dict(entry or {}),
                "checked_at": now,
            }
            for table, entry in known.items()
        ]
        bind.execute(sa.insert(_flags()), rows)
        bind.execute(
            sa.update(tenants).where(tenants.c.id == tenant_id).values(metadata={**(meta or {}), "settings": settings})
        )


def downgrade() -> None:
    bind = op.get_bind()
    flags, tenants = _flags(), _tenants()
    by_tenant: dict[str, dict[str, Any]] = {}
    for tenant_id, table, found, pending in bind.execute(
        sa.select(flags.c.tenant_id, flags.c.table_name, flags.c.flags, flags.c.pending)
    ).all():
        by_tenant.setdefault(tenant_id, {})[table] = {**dict(found or {}), **({_PENDING: "pending"} if pending else {})}
    for tenant_id, known in by_tenant.items():
        meta = bind.execute(sa.select(tenants.c.metadata).where(tenants.c.id == tenant_id)).scalar_one_or_none()
        settings = {**dict((meta or {}).get("settings") or {}), _KEY: known}
        bind.execute(
            sa.update(tenants).where(tenants.c.id == tenant_id).values(metadata={**(meta or {}), "settings": settings})
        )
    op.drop_table("pii_flags")
