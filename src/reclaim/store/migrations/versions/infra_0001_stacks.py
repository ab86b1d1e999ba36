"""Infra orchestration: stack locks, apply intents, stack output history, global outputs.

Revision ID: infra_0001
Revises:
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "infra_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("infra",)
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "infra_locks",
        sa.Column("stack", sa.String(200), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("acquired_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("stack", name="pk_infra_locks"),
    )
    op.create_table(
        "infra_applies",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("stack", sa.String(200), nullable=False),
        sa.Column("base_serial", sa.BigInteger()),
        sa.Column("base_lineage", sa.String(64)),
        sa.Column("started_at", _TIME, nullable=False),
        sa.Column("finished_at", _TIME),
        sa.Column("serial", sa.BigInteger()),
        sa.Column("lineage", sa.String(64)),
        sa.Column("outcome", sa.String(16)),
        sa.PrimaryKeyConstraint("run_id", "stack", name="pk_infra_applies"),
    )
    op.create_table(
        "infra_outputs",
        sa.Column("id", _ID, nullable=False, autoincrement=True),
        sa.Column("stack", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("outputs", sa.Text(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_infra_outputs"),
        sa.UniqueConstraint("stack", "version", name="uq_infra_outputs_stack_version"),
        sa.UniqueConstraint("stack", "run_id", name="uq_infra_outputs_stack_run_id"),
    )
    op.create_table(
        "infra_global_outputs",
        sa.Column("version", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("version", name="pk_infra_global_outputs"),
    )


def downgrade() -> None:
    op.drop_table("infra_global_outputs")
    op.drop_table("infra_outputs")
    op.drop_table("infra_applies")
    op.drop_table("infra_locks")
