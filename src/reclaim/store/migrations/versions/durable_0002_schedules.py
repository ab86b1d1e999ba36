"""Durable engine: cron schedules (``reclaim.durable.schedule``).

Revision ID: durable_0002
Revises: durable_0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from reclaim.durable.schema import UtcDateTime

revision: str = "durable_0002"
down_revision: str | Sequence[str] | None = "durable_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "durable_schedules",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("cron", sa.String(200), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("workflow", sa.String(200), nullable=False),
        sa.Column("input", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("last_tick_at", UtcDateTime(), nullable=True),
        sa.Column("last_run_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_durable_schedules")),
    )


def downgrade() -> None:
    op.drop_table("durable_schedules")
