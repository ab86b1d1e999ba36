"""Tables of the service: the API tokens (stored as hashes only), the configured schedules."""

from __future__ import annotations

__all__ = ["api_tokens", "config_schedules"]

import sqlalchemy as sa

from reclaim.database import UtcDateTime
from reclaim.store.schema import metadata

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    # The public part of a token (``rct_<id>_<secret>``): finds the row without a scan, and
    # names the token in logs without revealing it.
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("revoked_at", UtcDateTime()),
)

# The schedules ``reclaim serve`` and ``reclaim worker`` installed from reclaim.yaml, so that
# a schedule the file stops naming is removed, and one made with `reclaim schedules add` is not.
config_schedules = sa.Table(
    "config_schedules",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("config", sa.String(1000), nullable=False),
    sa.Column("installed_at", UtcDateTime(), nullable=False),
)
