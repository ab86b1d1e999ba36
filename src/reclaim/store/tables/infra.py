"""Tables of the infra orchestrator: stack locks, apply intents, output history.

``infra_applies`` is written *before* ``terraform apply`` starts, with the serial and lineage of
the state the plan was made from: a resumed run that finds the intent and a state that moved on
from that serial knows its earlier attempt applied the plan, and never applies it again.
"""

from __future__ import annotations

__all__ = ["infra_applies", "infra_global_outputs", "infra_locks", "infra_outputs"]

from typing import Final

import sqlalchemy as sa

from reclaim.database import UtcDateTime
from reclaim.store.schema import metadata

_ID: Final = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

infra_locks = sa.Table(
    "infra_locks",
    metadata,
    sa.Column("stack", sa.String(200), primary_key=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("acquired_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
)

infra_applies = sa.Table(
    "infra_applies",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("stack", sa.String(200), primary_key=True),
    sa.Column("base_serial", sa.BigInteger()),
    sa.Column("base_lineage", sa.String(64)),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("finished_at", UtcDateTime()),
    sa.Column("serial", sa.BigInteger()),
    sa.Column("lineage", sa.String(64)),
    sa.Column("outcome", sa.String(16)),
)

infra_outputs = sa.Table(
    "infra_outputs",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("stack", sa.String(200), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("outputs", sa.Text(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("stack", "version"),
    sa.UniqueConstraint("stack", "run_id"),
)

infra_global_outputs = sa.Table(
    "infra_global_outputs",
    metadata,
    sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("document", sa.Text(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)
