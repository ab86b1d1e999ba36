"""Durable engine: partial index on unfinished step rows, for claiming map items.

Revision ID: durable_0003
Revises: durable_0002
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "durable_0003"
down_revision: str | Sequence[str] | None = "durable_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Frozen here (not imported) so this revision keeps building the index it built when shipped.
CLAIMABLE_SQL = "status IN ('pending', 'running')"


def upgrade() -> None:
    op.create_index(
        "ix_durable_steps_claimable",
        "durable_steps",
        ["run_id", "step", "item_key"],
        postgresql_where=sa.text(CLAIMABLE_SQL),
        sqlite_where=sa.text(CLAIMABLE_SQL),
    )


def downgrade() -> None:
    op.drop_index("ix_durable_steps_claimable", table_name="durable_steps")
