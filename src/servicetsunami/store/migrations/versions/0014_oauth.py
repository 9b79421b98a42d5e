"""OAuth 2.1 for MCP clients: clients, users' grants, authorization codes and refresh tokens.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05

Written by hand against ``servicetsunami.store.models.OAuthClient``, ``OAuthGrant``, ``OAuthCode``
and ``OAuthRefreshToken``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _json(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "oauth_clients",
        sa.Column("id", sa.String(500), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=True),
        _json("info"),
        _ts("created_at"),
        _ts("fetched_at", nullable=True),
        _json("metadata"),
        sa.CheckConstraint("source IN ('registered', 'document')", name="ck_oauth_clients_source"),
        sa.PrimaryKeyConstraint("id", name="pk_oauth_clients"),
    )
    op.create_table(
        "oauth_grants",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("client_id", sa.String(500), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        _json("scopes"),
        _ts("created_at"),
        _ts("last_used_at", nullable=True),
        _ts("revoked_at", nullable=True),
        _json("metadata"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_oauth_grants_tenant_id_tenants", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_oauth_grants_user_id_users", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["client_id"], ["oauth_clients.id"], name="fk_oauth_grants_client_id_oauth_clients", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_oauth_grants"),
    )
    op.create_index("ix_oauth_grants_tenant_id_created_at", "oauth_grants", ["tenant_id", "created_at"])
    op.create_index("ix_oauth_grants_user_id", "oauth_grants", ["user_id"])
    op.create_table(
        "oauth_codes",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("grant_id", sa.String(36), nullable=False),
        sa.Column("code_challenge", sa.String(128), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("redirect_uri_explicit", sa.Boolean(), nullable=False),
        _ts("created_at"),
        _ts("expires_at"),
        _ts("used_at", nullable=True),
        _json("metadata"),
        sa.ForeignKeyConstraint(
            ["grant_id"], ["oauth_grants.id"], name="fk_oauth_codes_grant_id_oauth_grants", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_oauth_codes"),
        sa.UniqueConstraint("code_hash", name="uq_oauth_codes_code_hash"),
    )
    op.create_index("ix_oauth_codes_grant_id", "oauth_codes", ["grant_id"])
    op.create_table(
        "oauth_refresh_tokens",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("grant_id", sa.String(36), nullable=False),
        _ts("created_at"),
        _ts("expires_at"),
        _ts("revoked_at", nullable=True),
        sa.Column("replaced_by", sa.String(36), nullable=True),
        _json("metadata"),
        sa.ForeignKeyConstraint(
            ["grant_id"],
            ["oauth_grants.id"],
            name="fk_oauth_refresh_tokens_grant_id_oauth_grants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_oauth_refresh_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_oauth_refresh_tokens_token_hash"),
    )
    op.create_index("ix_oauth_refresh_tokens_grant_id", "oauth_refresh_tokens", ["grant_id"])


def downgrade() -> None:
    op.drop_index("ix_oauth_refresh_tokens_grant_id", table_name="oauth_refresh_tokens")
    op.drop_table("oauth_refresh_tokens")
    op.drop_index("ix_oauth_codes_grant_id", table_name="oauth_codes")
    op.drop_table("oauth_codes")
    op.drop_index("ix_oauth_grants_user_id", table_name="oauth_grants")
    op.drop_index("ix_oauth_grants_tenant_id_created_at", table_name="oauth_grants")
    op.drop_table("oauth_grants")
    op.drop_table("oauth_clients")
