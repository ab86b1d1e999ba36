"""Recommendations, their observations per run, and recommend runs.

Revision ID: recommend_0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "recommend_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("recommend",)
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = sa.DateTime(timezone=True)
_MONEY = sa.Numeric(18, 4)


def upgrade() -> None:
    op.create_table(
        "recommendation_runs",
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("started_at", _TIME, nullable=False),
        sa.Column("finished_at", _TIME, nullable=False),
        sa.Column("as_of", _TIME),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.Column("rules_digest", sa.String(64), nullable=False),
        sa.Column("facts", sa.Integer(), nullable=False),
        sa.Column("matched", sa.Integer(), nullable=False),
        sa.Column("new", sa.Integer(), nullable=False),
        sa.Column("seen_again", sa.Integer(), nullable=False),
        sa.Column("snoozed", sa.Integer(), nullable=False),
        sa.Column("reopened", sa.Integer(), nullable=False),
        sa.Column("resolved", sa.Integer(), nullable=False),
        sa.Column("implemented", sa.Integer(), nullable=False),
        sa.Column("conflicts", sa.Integer(), nullable=False),
        sa.Column("monthly_savings", _MONEY, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_recommendation_runs"),
    )
    op.create_table(
        "recommendations",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("rule_id", sa.String(200), nullable=False),
        sa.Column("resource_id", sa.String(2048), nullable=False),
        sa.Column("account_id", sa.String(256)),
        sa.Column("resource_name", sa.String(1024)),
        sa.Column("kind", sa.String(32)),
        sa.Column("region", sa.String(64)),
        sa.Column("owner", sa.String(256)),
        sa.Column("title", sa.Text()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("monthly_savings", _MONEY, nullable=False),
        sa.Column("savings_method", sa.String(64)),
        sa.Column("cost_30d", _MONEY),
        sa.Column("currency", sa.String(8)),
        sa.Column("params", sa.JSON()),
        sa.Column("first_seen", _TIME, nullable=False),
        sa.Column("last_seen", _TIME, nullable=False),
        sa.Column("times_seen", sa.Integer(), nullable=False),
        sa.Column("last_run_id", sa.String(200)),
        sa.Column("status_changed_at", _TIME, nullable=False),
        sa.Column("snoozed_until", _TIME),
        sa.Column("ticketed_at", _TIME),
        sa.Column("ticket_done_at", _TIME),
        sa.Column("resolved_at", _TIME),
        sa.Column("implemented_at", _TIME),
        sa.Column("realized_monthly_savings", _MONEY),
        sa.Column("realized_method", sa.String(64)),
        sa.Column("realized_checked_at", _TIME),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'ticketed', 'implemented', 'dismissed', 'reopened', 'resolved')",
            name="ck_recommendations_status",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_recommendations"),
        sa.UniqueConstraint("fingerprint", name="uq_recommendations_fingerprint"),
    )
    op.create_index("ix_recommendations_status", "recommendations", ["status"])
    op.create_table(
        "observations",
        sa.Column("recommendation_id", _ID, nullable=False),
        sa.Column("run_id", sa.String(200), nullable=False),
        sa.Column("seen_at", _TIME, nullable=False),
        sa.Column("monthly_savings", _MONEY, nullable=False),
        sa.Column("savings_method", sa.String(64)),
        sa.Column("cost_30d", _MONEY),
        sa.PrimaryKeyConstraint("recommendation_id", "run_id", name="pk_observations"),
    )


def downgrade() -> None:
    op.drop_table("observations")
    op.drop_table("recommendations")
    op.drop_table("recommendation_runs")
