"""The durable engine's two tables: one row per run, one row per step (or map item) checkpoint.

reclaim creates them through its Alembic branch ``durable``; a program that uses the engine
alone calls ``ensure_schema(engine)`` instead. Times are stored in UTC. Outputs, inputs and
recorded values are JSON text, identical on SQLite and PostgreSQL.
"""

from __future__ import annotations

__all__ = ["CLAIMABLE_SQL", "UtcDateTime", "ensure_schema", "metadata", "runs", "steps"]


import sqlalchemy as sa
from sqlalchemy.engine import Engine

from reclaim.database import NAMING_CONVENTION, UtcDateTime

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

RUN_STATUSES = ("pending", "running", "succeeded", "failed", "cancelled", "dead")
STEP_STATUSES = ("pending", "running", "succeeded", "failed")

runs = sa.Table(
    "durable_runs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("workflow", sa.String(200), nullable=False),
    sa.Column("version", sa.String(100), nullable=False),
    # sha256 of the step graph, and the graph itself so a mismatch can name the step.
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("definition", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("input", sa.Text, nullable=False),
    sa.Column("output", sa.Text),
    sa.Column("error", sa.Text),
    # Times the run was claimed; past max_attempts a claim marks it dead instead.
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("owner", sa.String(200)),
    sa.Column("lease_expires_at", UtcDateTime()),
    sa.Column("fencing_token", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("dedupe_key", sa.String(300), unique=True),
    sa.Column("timeout_at", UtcDateTime()),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("started_at", UtcDateTime()),
    sa.Column("finished_at", UtcDateTime()),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.CheckConstraint(
        "status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled', 'dead')",
        name="status",
    ),
    sa.Index("ix_durable_runs_status_created_at", "status", "created_at"),
    sa.Index("ix_durable_runs_workflow_created_at", "workflow", "created_at"),
)

# The predicate of the partial index on unfinished items. Queries that want the index repeat it
# as literal SQL: a bound parameter would hide the values from PostgreSQL's generic plans.
CLAIMABLE_SQL = "status IN ('pending', 'running')"

steps = sa.Table(
    "durable_steps",
    metadata,
    sa.Column(
        "run_id",
        sa.String(64),
        sa.ForeignKey("durable_runs.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("step", sa.String(200), primary_key=True),
    # '' for a plain step; the item's stable key for one item of a map step.
    sa.Column("item_key", sa.String(500), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("output", sa.Text),
    sa.Column("error", sa.Text),
    # Values read through the step context (time, random, ids, sleep deadlines), in call order,
    # so a step that runs again after a crash sees the same values.
    sa.Column("events", sa.Text),
    sa.Column("started_at", UtcDateTime()),
    sa.Column("finished_at", UtcDateTime()),
    # Map items can be claimed one by one by many workers under a lease of their own.
    sa.Column("owner", sa.String(200)),
    sa.Column("lease_expires_at", UtcDateTime()),
    sa.Column("fencing_token", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    # A queued item's position in the list its step maps over, so that a helper decodes only
    # the elements of the items it runs, not the whole list (a hint: the helper checks that
    # the element there still has the item's key). NULL for rows queued before it existed.
    sa.Column("element_index", sa.Integer),
    sa.CheckConstraint("status IN ('pending', 'running', 'succeeded', 'failed')", name="status"),
    sa.Index("ix_durable_steps_status", "status"),
    # Claiming map items walks only unfinished rows: without this index a claim walked past
    # every finished item of the step in key order (slower as the step progressed).
    sa.Index(
        "ix_durable_steps_claimable",
        "run_id",
        "step",
        "item_key",
        postgresql_where=sa.text(CLAIMABLE_SQL),
        sqlite_where=sa.text(CLAIMABLE_SQL),
    ),
)


def ensure_schema(engine: Engine) -> None:
    """Create the durable tables when missing, for programs outside reclaim's migrations.

    reclaim itself creates them with ``reclaim db upgrade`` (the ``durable`` Alembic branch);
    both paths build the same tables.
    """
    metadata.create_all(engine, checkfirst=True)
