"""Recommendations: indexes that keep the dashboard's list and the API's pages fast over a
million rows.

Each filter of the list (status, team, account, rule) leads an index that then orders by
saving and id, so a filtered page sorted by saving is one index range read from the top, and
the keyset cursor ``(monthly_savings, id)`` continues it without an OFFSET. The unfiltered list
has ``(monthly_savings, id)``; the API's oldest-first order has ``(first_seen, id)`` (first_seen
never changes once written, so a run pays nothing for it on the rows it sees again, unlike
last_seen). ``ix_recommendations_status`` becomes a prefix of the new status
index and is dropped.

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

# Frozen here (not imported) so this revision keeps building what it built when shipped.
INDEXES = {
    "ix_recommendations_savings": ["monthly_savings", "id"],
    "ix_recommendations_status_savings": ["status", "monthly_savings", "id"],
    "ix_recommendations_owner_savings": ["owner", "monthly_savings", "id"],
    "ix_recommendations_account_savings": ["account_id", "monthly_savings", "id"],
    "ix_recommendations_rule_savings": ["rule_id", "monthly_savings", "id"],
    "ix_recommendations_first_seen": ["first_seen", "id"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "recommendations", columns)
    op.drop_index("ix_recommendations_status", table_name="recommendations")


def downgrade() -> None:
    op.create_index("ix_recommendations_status", "recommendations", ["status"])
    for name in INDEXES:
        op.drop_index(name, table_name="recommendations")
