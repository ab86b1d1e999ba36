"""Indexes of recommendations in the orders the API and dashboard page in.

Revision ID: recommend_0002
Revises: recommend_0001
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "recommend_0002"
down_revision: str | Sequence[str] | None = "recommend_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Biggest saving first, id as the tie-break, read as one index range: a page over a
    # million rows without sorting them all.
    op.create_index("ix_recommendations_savings", "recommendations", ["monthly_savings", "id"])
    # Oldest first: first_seen never changes once written, so this index costs a run nothing
    # for the rows it sees again (unlike last_seen, which every run rewrites).
    op.create_index("ix_recommendations_first_seen", "recommendations", ["first_seen", "id"])


def downgrade() -> None:
    op.drop_index("ix_recommendations_first_seen", table_name="recommendations")
    op.drop_index("ix_recommendations_savings", table_name="recommendations")
