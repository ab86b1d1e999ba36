"""Tables of the sync component: tickets, which recommendation each belongs to, poll cursors.

``tickets`` has one row per fingerprint: the row is written (state ``creating``) *before* Jira
is called and gets its key after, so a crash in between leaves an intent that the next attempt
reconciles by searching Jira for the fingerprint label instead of creating blindly.
"""

from __future__ import annotations

__all__ = ["TICKET_STATES", "recommendation_tickets", "sync_cursors", "tickets"]

from typing import Final

import sqlalchemy as sa

from reclaim.database import UtcDateTime
from reclaim.store.schema import metadata

TICKET_STATES: Final = ("creating", "created")

_ID: Final = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

tickets = sa.Table(
    "tickets",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("fingerprint", sa.String(64), nullable=False, unique=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("system", sa.String(16), nullable=False),
    sa.Column("project", sa.String(64), nullable=False),
    sa.Column("key", sa.String(64), unique=True),
    sa.Column("issue_id", sa.String(32)),
    sa.Column("url", sa.Text()),
    sa.Column("status", sa.String(128)),
    sa.Column("status_category", sa.String(32)),
    sa.Column("resolution", sa.String(128)),
    sa.Column("jira_updated_ms", sa.BigInteger()),
    sa.Column("intent_at", UtcDateTime(), nullable=False),
    sa.Column("created_at", UtcDateTime()),
    sa.Column("last_synced_at", UtcDateTime()),
    sa.Column("attempts", sa.Integer(), nullable=False),
    # Write-back to the ticket (reclaim.sync.writeback): the savings figure it last showed, the
    # last lifecycle write-back applied, and the one in flight (checked against Jira on resume).
    sa.Column("posted_savings", sa.Numeric(18, 4)),
    sa.Column("writeback_done", sa.String(128)),
    sa.Column("writeback_pending", sa.String(128)),
    sa.Column("writeback_pending_at", UtcDateTime()),
    sa.CheckConstraint(
        "state IN (" + ", ".join(f"'{state}'" for state in TICKET_STATES) + ")", name="state"
    ),
)

recommendation_tickets = sa.Table(
    "recommendation_tickets",
    metadata,
    sa.Column("recommendation_id", _ID, primary_key=True, autoincrement=False),
    sa.Column("ticket_id", _ID, sa.ForeignKey("tickets.id"), nullable=False),
)

sync_cursors = sa.Table(
    "sync_cursors",
    metadata,
    sa.Column("source", sa.String(128), primary_key=True),
    sa.Column("cursor_ms", sa.BigInteger(), nullable=False),
    sa.Column("page_token", sa.Text()),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)
