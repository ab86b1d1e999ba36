"""What differs between SQLite and PostgreSQL for the store: the clock and the upsert.

Everything else (claims, fencing, checkpoints) is one SQLAlchemy Core implementation in
``store.py``. ``SKIP LOCKED`` needs no hook: SQLAlchemy leaves ``FOR UPDATE`` out on SQLite,
where ``BEGIN IMMEDIATE`` already serialises writers.
"""

from __future__ import annotations

__all__ = ["Dialect", "PreparedWrite", "dialect_for"]

import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from reclaim.database import Backend
from reclaim.durable.schema import UtcDateTime


class Dialect:
    """What differs between the backends: the clock, the upsert, how a write transaction opens."""

    # Raw DBAPI connections bypass the engine's "begin" hook, so the hot path opens its own.
    begin_sql: str | None = None

    def now(self) -> sa.ColumnElement[datetime]:
        raise NotImplementedError

    def later(self, seconds: float | sa.ColumnElement[Any]) -> sa.ColumnElement[datetime]:
        """The database clock plus ``seconds`` (a number, or a bound parameter)."""
        raise NotImplementedError

    def insert(self, table: sa.Table) -> Any:
        raise NotImplementedError


class _SQLite(Dialect):
    begin_sql = "BEGIN IMMEDIATE"

    # '%f' gives milliseconds; leases are written and compared only through these expressions,
    # so the stored text always has one format and compares correctly as text.
    def now(self) -> sa.ColumnElement[datetime]:
        return sa.type_coerce(sa.func.strftime("%Y-%m-%d %H:%M:%f", "now"), UtcDateTime())

    def later(self, seconds: float | sa.ColumnElement[Any]) -> sa.ColumnElement[datetime]:
        modifier: Any = (
            sa.func.printf("%+.3f seconds", seconds)
            if isinstance(seconds, sa.ColumnElement)
            else f"{float(seconds):+.3f} seconds"
        )
        return sa.type_coerce(sa.func.strftime("%Y-%m-%d %H:%M:%f", "now", modifier), UtcDateTime())

    def insert(self, table: sa.Table) -> Any:
        return sqlite.insert(table)


class _PostgreSQL(Dialect):
    # clock_timestamp(), not now(): now() is frozen at the start of the transaction.
    def now(self) -> sa.ColumnElement[datetime]:
        return sa.type_coerce(sa.func.clock_timestamp(), UtcDateTime())

    def later(self, seconds: float | sa.ColumnElement[Any]) -> sa.ColumnElement[datetime]:
        amount = seconds if isinstance(seconds, sa.ColumnElement) else float(seconds)
        return sa.type_coerce(
            sa.func.clock_timestamp() + sa.func.make_interval(0, 0, 0, 0, 0, 0, amount),
            UtcDateTime(),
        )

    def insert(self, table: sa.Table) -> Any:
        return postgresql.insert(table)


def dialect_for(backend: Backend) -> Dialect:
    return _SQLite() if backend is Backend.SQLITE else _PostgreSQL()


class PreparedWrite:
    """One write statement compiled once, run in a transaction of its own on a raw connection.

    The checkpoint is the engine's hot path: per step it must cost little more than the commit
    itself. Going around SQLAlchemy's ``Connection`` (events, compiled-cache lookup, result
    objects) saves most of the Python overhead; the SQL, the bind processing and the error
    types are still SQLAlchemy's.
    """

    def __init__(self, engine: Engine, statement: Any, dialect: Dialect) -> None:
        self.engine = engine
        self.begin_sql = dialect.begin_sql
        compiled = statement.compile(dialect=engine.dialect)
        self.sql: str = compiled.string
        self.positions: list[str] | None = (
            list(compiled.positiontup) if compiled.positiontup else None
        )
        self.processors: dict[str, Callable[[Any], Any]] = {}
        for name, bind in compiled.binds.items():
            processor = bind.type.dialect_impl(engine.dialect).bind_processor(engine.dialect)
            if processor is not None:
                self.processors[name] = processor
        # Literals inside the statement are bound parameters too, with values of their own.
        rendered = (
            set(self.positions)
            if self.positions is not None
            else {name for name in compiled.binds if f"%({name})s" in self.sql}
        )
        self.defaults: dict[str, Any] = {
            name: bind.value
            for name, bind in compiled.binds.items()
            if name in rendered and bind.value is not None and not bind.required
        }

    def rowcount(self, params: dict[str, Any]) -> int:
        """Execute and commit; return how many rows the statement changed."""
        merged = {**self.defaults, **params} if self.defaults else params
        values = {
            key: (self.processors[key](value) if key in self.processors else value)
            for key, value in merged.items()
        }
        arguments: Any = (
            values if self.positions is None else tuple(values[k] for k in self.positions)
        )
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            try:
                if self.begin_sql:
                    cursor.execute(self.begin_sql)
                cursor.execute(self.sql, arguments)
                count: int = cursor.rowcount
                raw.commit()
                return count
            except self.engine.dialect.loaded_dbapi.Error as exc:
                disconnected = self.engine.dialect.is_disconnect(exc, raw.dbapi_connection, cursor)
                with contextlib.suppress(Exception):
                    raw.rollback()
                if disconnected:
                    raw.invalidate(exc)
                raise sa.exc.DBAPIError.instance(
                    self.sql,
                    arguments,
                    exc,
                    self.engine.dialect.loaded_dbapi.Error,
                    connection_invalidated=disconnected,
                    dialect=self.engine.dialect,
                ) from exc
            finally:
                cursor.close()
        finally:
            raw.close()
