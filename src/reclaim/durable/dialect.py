"""What differs between SQLite and PostgreSQL for the store: the clock and the upsert.

Everything else (claims, fencing, checkpoints) is one SQLAlchemy Core implementation in
``store.py``. ``SKIP LOCKED`` needs no hook: SQLAlchemy leaves ``FOR UPDATE`` out on SQLite,
where ``BEGIN IMMEDIATE`` already serialises writers.
"""

from __future__ import annotations

__all__ = ["Dialect", "dialect_for"]

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from reclaim.database import Backend
from reclaim.durable.schema import UtcDateTime


class Dialect:
    """What differs between the backends: the clock, and the upsert statement."""

    def now(self) -> sa.ColumnElement[datetime]:
        raise NotImplementedError

    def later(self, seconds: float) -> sa.ColumnElement[datetime]:
        raise NotImplementedError

    def insert(self, table: sa.Table) -> Any:
        raise NotImplementedError


class _SQLite(Dialect):
    # '%f' gives milliseconds; leases are written and compared only through these expressions,
    # so the stored text always has one format and compares correctly as text.
    def now(self) -> sa.ColumnElement[datetime]:
        return sa.type_coerce(sa.func.strftime("%Y-%m-%d %H:%M:%f", "now"), UtcDateTime())

    def later(self, seconds: float) -> sa.ColumnElement[datetime]:
        return sa.type_coerce(
            sa.func.strftime("%Y-%m-%d %H:%M:%f", "now", f"{float(seconds):+.3f} seconds"),
            UtcDateTime(),
        )

    def insert(self, table: sa.Table) -> Any:
        return sqlite.insert(table)


class _PostgreSQL(Dialect):
    # clock_timestamp(), not now(): now() is frozen at the start of the transaction.
    def now(self) -> sa.ColumnElement[datetime]:
        return sa.type_coerce(sa.func.clock_timestamp(), UtcDateTime())

    def later(self, seconds: float) -> sa.ColumnElement[datetime]:
        return sa.type_coerce(
            sa.func.clock_timestamp() + sa.func.make_interval(0, 0, 0, 0, 0, 0, float(seconds)),
            UtcDateTime(),
        )

    def insert(self, table: sa.Table) -> Any:
        return postgresql.insert(table)


def dialect_for(backend: Backend) -> Dialect:
    return _SQLite() if backend is Backend.SQLITE else _PostgreSQL()
