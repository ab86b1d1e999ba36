"""Durable engine: a queued map item's position in the list its step maps over.

Revision ID: durable_0004
Revises: durable_0003
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "durable_0004"
down_revision: str | Sequence[str] | None = "durable_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("durable_steps") as batch:
        batch.add_column(sa.Column("element_index", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("durable_steps") as batch:
        batch.drop_column("element_index")
