"""Durable engine: runs and their step checkpoints.

Revision ID: durable_0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from reclaim.durable.schema import UtcDateTime

revision: str = "durable_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("durable",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "durable_runs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("workflow", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("input", sa.Text(), nullable=False),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("lease_expires_at", UtcDateTime(), nullable=True),
        sa.Column("fencing_token", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("dedupe_key", sa.String(300), nullable=True),
        sa.Column("timeout_at", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=True),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled', 'dead')",
            name=op.f("ck_durable_runs_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_durable_runs")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_durable_runs_dedupe_key")),
    )
    op.create_index("ix_durable_runs_status_created_at", "durable_runs", ["status", "created_at"])
    op.create_index(
        "ix_durable_runs_workflow_created_at", "durable_runs", ["workflow", "created_at"]
    )
    op.create_table(
        "durable_steps",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("step", sa.String(200), nullable=False),
        sa.Column("item_key", sa.String(500), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("events", sa.Text(), nullable=True),
        sa.Column("started_at", UtcDateTime(), nullable=True),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("lease_expires_at", UtcDateTime(), nullable=True),
        sa.Column("fencing_token", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'succeeded', 'failed')",
            name=op.f("ck_durable_steps_status"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["durable_runs.id"],
            name=op.f("fk_durable_steps_run_id_durable_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "step", "item_key", name=op.f("pk_durable_steps")),
    )
    op.create_index("ix_durable_steps_status", "durable_steps", ["status"])


def downgrade() -> None:
    op.drop_index("ix_durable_steps_status", table_name="durable_steps")
    op.drop_table("durable_steps")
    op.drop_index("ix_durable_runs_workflow_created_at", table_name="durable_runs")
    op.drop_index("ix_durable_runs_status_created_at", table_name="durable_runs")
    op.drop_table("durable_runs")
