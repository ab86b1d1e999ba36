"""Schedules installed from reclaim.yaml by ``reclaim serve`` and ``reclaim worker``.

Revision ID: service_0002
Revises: service_0001
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "service_0002"
down_revision: str | Sequence[str] | None = "service_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "config_schedules",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("config", sa.String(1000), nullable=False),
        sa.Column("installed_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_config_schedules"),
    )


def downgrade() -> None:
    op.drop_table("config_schedules")
