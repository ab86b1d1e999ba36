"""Tickets (one row per fingerprint, written before Jira is called), their recommendations,
and the inbound poll cursors.

Revision ID: sync_0001
Revises:
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "sync_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("sync",)
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("id", _ID, nullable=False, autoincrement=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("system", sa.String(16), nullable=False),
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("key", sa.String(64)),
        sa.Column("issue_id", sa.String(32)),
        sa.Column("url", sa.Text()),
        sa.Column("status", sa.String(128)),
        sa.Column("status_category", sa.String(32)),
        sa.Column("resolution", sa.String(128)),
        sa.Column("jira_updated_ms", sa.BigInteger()),
        sa.Column("intent_at", _TIME, nullable=False),
        sa.Column("created_at", _TIME),
        sa.Column("last_synced_at", _TIME),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.CheckConstraint("state IN ('creating', 'created')", name="ck_tickets_state"),
        sa.PrimaryKeyConstraint("id", name="pk_tickets"),
        sa.UniqueConstraint("fingerprint", name="uq_tickets_fingerprint"),
        sa.UniqueConstraint("key", name="uq_tickets_key"),
    )
    op.create_table(
        "recommendation_tickets",
        sa.Column("recommendation_id", _ID, nullable=False, autoincrement=False),
        sa.Column("ticket_id", _ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name="fk_recommendation_tickets_ticket_id_tickets",
        ),
        sa.PrimaryKeyConstraint("recommendation_id", name="pk_recommendation_tickets"),
    )
    op.create_table(
        "sync_cursors",
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("cursor_ms", sa.BigInteger(), nullable=False),
        sa.Column("page_token", sa.Text()),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("source", name="pk_sync_cursors"),
    )


def downgrade() -> None:
    op.drop_table("sync_cursors")
    op.drop_table("recommendation_tickets")
    op.drop_table("tickets")
