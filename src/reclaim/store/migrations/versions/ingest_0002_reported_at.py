"""Fact collections: when each was last reported, so "the newest" is the one last collected.

Collecting A, then B, then A again returns collection A ("nothing new"); the facts ``reclaim
recommend`` reads by default must then be A's, not B's, although B was created later.

Revision ID: ingest_0002
Revises: ingest_0001
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ingest_0002"
down_revision: str | Sequence[str] | None = "ingest_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("fact_collections") as batch:
        batch.add_column(sa.Column("reported_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE fact_collections SET reported_at = created_at")
    op.create_index("ix_fact_collections_reported_at", "fact_collections", ["reported_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_fact_collections_reported_at", table_name="fact_collections")
    with op.batch_alter_table("fact_collections") as batch:
        batch.drop_column("reported_at")
