"""Tickets: what reclaim last wrote back to each one, and the write-back in flight.

``posted_savings`` is the monthly figure the ticket last showed (a material change is posted
again); ``writeback_done`` the last lifecycle write-back applied (``reopen@<ms>``…), so a
repeated write-back is recognised; ``writeback_pending``/``writeback_pending_at`` the one in
flight, so a crash in the middle is checked against Jira before anything is sent again.

Revision ID: sync_0002
Revises: sync_0001
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "sync_0002"
down_revision: str | Sequence[str] | None = "sync_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("posted_savings", sa.Numeric(18, 4)))
        batch.add_column(sa.Column("writeback_done", sa.String(128)))
        batch.add_column(sa.Column("writeback_pending", sa.String(128)))
        batch.add_column(sa.Column("writeback_pending_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("writeback_pending_at")
        batch.drop_column("writeback_pending")
        batch.drop_column("writeback_done")
        batch.drop_column("posted_savings")
