"""Tables of the recommend component: recommendations, their observations, and runs.

``recommendations`` holds one row per fingerprint (rule, resource, account): a recommendation
seen again updates its row, never adds one. ``observations`` keeps what each run saw, one row
per (run, recommendation), so re-applying a run adds nothing. ``recommendation_runs`` records
each recommend run with its counts; it is deliberately separate from the durable engine's
``runs`` so the recommend component can be used without workflows.

Money is ``Numeric(18, 4)`` (exact decimals, never floats, in the database). Times are aware
UTC datetimes on both backends.
"""

from __future__ import annotations

__all__ = [
    "MONEY",
    "RECOMMENDATION_STATUSES",
    "RUN_ID_LENGTH",
    "UtcDateTime",
    "observations",
    "recommendation_runs",
    "recommendations",
]

from typing import Final

import sqlalchemy as sa

from reclaim.database import UtcDateTime
from reclaim.store.schema import metadata

RECOMMENDATION_STATUSES: Final = (
    "open",
    "ticketed",
    "implemented",
    "dismissed",
    "reopened",
    "resolved",
)

MONEY: Final = sa.Numeric(18, 4)

RUN_ID_LENGTH: Final = 200
"""Longest run id: a durable step's idempotency key (run id / step) fits with room to spare."""

# SQLite has no BIGINT rowid alias: only "INTEGER PRIMARY KEY" autoincrements there.
_ID: Final = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


recommendation_runs = sa.Table(
    "recommendation_runs",
    metadata,
    sa.Column("id", sa.String(RUN_ID_LENGTH), primary_key=True),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("finished_at", UtcDateTime(), nullable=False),
    sa.Column("as_of", UtcDateTime()),
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
    sa.Column("monthly_savings", MONEY, nullable=False),
)

recommendations = sa.Table(
    "recommendations",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
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
    sa.Column("monthly_savings", MONEY, nullable=False),
    sa.Column("savings_method", sa.String(64)),
    sa.Column("cost_30d", MONEY),
    sa.Column("currency", sa.String(8)),
    sa.Column("params", sa.JSON()),
    sa.Column("first_seen", UtcDateTime(), nullable=False),
    sa.Column("last_seen", UtcDateTime(), nullable=False),
    sa.Column("times_seen", sa.Integer(), nullable=False),
    sa.Column("last_run_id", sa.String(RUN_ID_LENGTH)),
    sa.Column("status_changed_at", UtcDateTime(), nullable=False),
    sa.Column("snoozed_until", UtcDateTime()),
    sa.Column("ticketed_at", UtcDateTime()),
    sa.Column("ticket_done_at", UtcDateTime()),
    sa.Column("resolved_at", UtcDateTime()),
    sa.Column("implemented_at", UtcDateTime()),
    sa.Column("realized_monthly_savings", MONEY),
    sa.Column("realized_method", sa.String(64)),
    sa.Column("realized_checked_at", UtcDateTime()),
    # Optimistic concurrency: every write bumps it and only applies over the version it read,
    # so a run never overwrites a status the ticket sync changed meanwhile.
    sa.Column("version", sa.Integer(), nullable=False),
    sa.CheckConstraint(
        "status IN (" + ", ".join(f"'{status}'" for status in RECOMMENDATION_STATUSES) + ")",
        name="status",
    ),
    # An index, not a UNIQUE constraint: SQLite cannot drop a constraint's index, and a bulk
    # insert into an empty table builds this one after the rows (see reclaim.recommend.store).
    sa.Index("uq_recommendations_fingerprint", "fingerprint", unique=True),
    # The dashboard's list: each filter, then the saving and id its keyset cursor orders by.
    sa.Index("ix_recommendations_savings", "monthly_savings", "id"),
    sa.Index("ix_recommendations_status_savings", "status", "monthly_savings", "id"),
    sa.Index("ix_recommendations_owner_savings", "owner", "monthly_savings", "id"),
    sa.Index("ix_recommendations_account_savings", "account_id", "monthly_savings", "id"),
    sa.Index("ix_recommendations_rule_savings", "rule_id", "monthly_savings", "id"),
    # The API's oldest-first order (see reclaim.service.queries).
    sa.Index("ix_recommendations_first_seen", "first_seen", "id"),
)

# The key starts with the recommendation, so its history is one range of the key and no second
# index has to be maintained for every observation a run writes. There are no foreign keys on
# purpose: PostgreSQL checks them with one trigger call per row, which doubled the cost of a
# run's bulk insert, and observations are only ever written by a join with ``recommendations``
# in the transaction that inserts their run, so the references hold by construction.
observations = sa.Table(
    "observations",
    metadata,
    sa.Column("recommendation_id", _ID, primary_key=True, autoincrement=False),
    sa.Column("run_id", sa.String(RUN_ID_LENGTH), primary_key=True),
    sa.Column("seen_at", UtcDateTime(), nullable=False),
    sa.Column("monthly_savings", MONEY, nullable=False),
    sa.Column("savings_method", sa.String(64)),
    sa.Column("cost_30d", MONEY),
)
