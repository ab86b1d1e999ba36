"""Recommendations: the fingerprint is kept unique by a named unique index, not a constraint.

On SQLite a UNIQUE constraint is an automatic index that cannot be dropped, so a run's bulk
insert into an empty table paid for a million random-order inserts into it; a unique index of
the same name can be dropped for that insert and built after it, in one sort (see
``reclaim.recommend.store``). ``ON CONFLICT (fingerprint)`` works the same with either.
SQLite rebuilds the table to lose the constraint (batch mode copies every row, ids and all);
PostgreSQL swaps the constraint for an index of the same name.

Revision ID: recommend_0003
Revises: recommend_0002
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "recommend_0003"
down_revision: str | Sequence[str] | None = "recommend_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NAME = "uq_recommendations_fingerprint"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("recommendations", recreate="always") as batch:
            batch.drop_constraint(_NAME, type_="unique")
    else:
        op.drop_constraint(_NAME, "recommendations", type_="unique")
    op.create_index(_NAME, "recommendations", ["fingerprint"], unique=True)


def downgrade() -> None:
    op.drop_index(_NAME, table_name="recommendations")
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("recommendations", recreate="always") as batch:
            batch.create_unique_constraint(_NAME, ["fingerprint"])
    else:
        op.create_unique_constraint(_NAME, "recommendations", ["fingerprint"])
