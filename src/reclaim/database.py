"""Turning a database URL into a SQLAlchemy engine that is set up for concurrent, durable use.

Two backends are supported. SQLite is the embedded default: one file, WAL so readers never block
the writer, a busy timeout instead of instant ``database is locked`` errors, foreign keys on, and
``synchronous=FULL`` so a commit that returned survives a power cut. PostgreSQL (through psycopg 3)
is the engine for many workers on many machines.

This module knows nothing of reclaim's tables: the rules and durable engines and the application
store all build on it.
"""

from __future__ import annotations

__all__ = [
    "DATABASE_URL_ENV",
    "NAMING_CONVENTION",
    "Backend",
    "UtcDateTime",
    "backend_of",
    "check_connection",
    "create_engine",
    "default_database_url",
    "redact_url",
    "resolve_database_url",
]

import os
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from platformdirs import user_data_path
from sqlalchemy import event
from sqlalchemy.engine import URL, Dialect, Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import StaticPool

from reclaim.errors import ConfigError, DatabaseError

DATABASE_URL_ENV = "RECLAIM_DATABASE_URL"

# A writer that waits this long for SQLite's lock is stuck behind something real, not contention.
SQLITE_BUSY_TIMEOUT_MS = 30_000

# Connections a PostgreSQL engine keeps open, and how many more it may open for a burst (closed
# again once returned). A durable worker needs about three at once whatever its concurrency
# (map items are claimed and saved in batches by one thread, see reclaim.durable.pump), so a
# hundred workers hold a few hundred connections at most, not 2,400; steps that open their own
# transactions on ctx.database use the burst.
POSTGRES_POOL_SIZE = 4
POSTGRES_MAX_OVERFLOW = 12


class Backend(StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


def default_database_url() -> str:
    """The embedded default: a SQLite file in the user's data directory."""
    return f"sqlite:///{user_data_path('reclaim', appauthor=False) / 'reclaim.db'}"


def resolve_database_url(explicit: str | None = None) -> str:
    """Pick the database URL: ``--db`` first, then ``RECLAIM_DATABASE_URL``, then the default."""
    if explicit:
        return explicit
    from_env = os.environ.get(DATABASE_URL_ENV, "").strip()
    return from_env or default_database_url()


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(
            f"cannot read database URL {url!r}",
            fix="use sqlite:///path/to/file.db or postgresql://user@host:5432/dbname",
        ) from exc
    backend = parsed.get_backend_name()
    if backend in ("postgres", "postgresql"):
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return parsed.set(drivername="sqlite")
    raise ConfigError(
        f"unsupported database {backend!r} in URL {redact_url(url)!r}",
        fix="reclaim runs on SQLite (sqlite:///file.db) or PostgreSQL (postgresql://…)",
    )


def redact_url(url: str) -> str:
    """The URL with any password hidden, fit for logs and error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unreadable URL>"


def backend_of(engine: Engine) -> Backend:
    return Backend.SQLITE if engine.dialect.name == "sqlite" else Backend.POSTGRESQL


def create_engine(
    url: str, *, schema: str | None = None, echo: bool = False, read_only: bool = False
) -> Engine:
    """Build an engine for ``url``.

    ``schema`` (PostgreSQL only) puts reclaim's tables in that schema through the connection's
    ``search_path``; the test suite uses it to give every test a schema of its own.
    ``read_only`` (SQLite only; ignored elsewhere) is for long reads such as the dashboard's:
    its transactions are deferred snapshots that never take the write lock, so a scan of a
    million rows does not hold up a run writing meanwhile, and any write is refused.
    """
    parsed = _parse(url)
    if parsed.get_backend_name() == "sqlite":
        if schema is not None:
            raise ConfigError("a schema can only be chosen on PostgreSQL")
        return _sqlite_engine(parsed, echo=echo, read_only=read_only)
    return _postgresql_engine(parsed, schema=schema, echo=echo)


def _sqlite_engine(url: URL, *, echo: bool, read_only: bool = False) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or url.query.get("mode") == "memory"
    kwargs: dict[str, Any] = {"echo": echo}
    if in_memory:
        # Every connection to ":memory:" is a new, empty database, so all users share one.
        kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    engine = sa.create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite opens transactions lazily and only before DML, which lets a read turn into a
        # write mid-transaction and fail with SQLITE_BUSY that no timeout can cure. We take
        # control of BEGIN ourselves (see the "begin" hook) and start in autocommit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=FULL")
            if read_only:
                cursor.execute("PRAGMA query_only=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        # IMMEDIATE takes the write lock up front, so two writers queue on the busy timeout
        # instead of deadlocking when both try to upgrade a read lock. A read-only engine never
        # upgrades, so its deferred BEGIN is a WAL snapshot that blocks no writer.
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _postgresql_engine(url: URL, *, schema: str | None, echo: bool) -> Engine:
    connect_args: dict[str, Any] = {"application_name": "reclaim"}
    if schema is not None:
        if not schema.replace("_", "").isalnum():
            raise ConfigError(f"schema name {schema!r} must be letters, digits and underscores")
        connect_args["options"] = f"-csearch_path={schema}"
    # No pool_pre_ping: it costs a round trip on every checkout, which is every checkpoint of
    # the durable engine. A connection that died with its server fails once with a disconnect
    # error, SQLAlchemy then invalidates the whole pool, and the caller's retry reconnects.
    return sa.create_engine(
        url,
        echo=echo,
        pool_size=POSTGRES_POOL_SIZE,
        max_overflow=POSTGRES_MAX_OVERFLOW,
        pool_recycle=1800,
        connect_args=connect_args,
    )


def check_connection(engine: Engine) -> None:
    """Open one connection, turning a failure into an error that says how to fix it."""
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except OperationalError as exc:
        where = redact_url(engine.url.render_as_string(hide_password=False))
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseError(
            f"cannot connect to the database {where}: {reason}",
            fix=f"check the URL given by --db or {DATABASE_URL_ENV}, and that the server runs",
        ) from exc


# Constraint names that are the same on every backend, so migrations can refer to them by name.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(sa.TypeDecorator[datetime]):
    """An aware UTC datetime on both backends (SQLite keeps no zone, so we put UTC back).

    Naive datetimes are refused on the way in: a time without a zone is a bug waiting for a
    server in another time zone.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: stored times must carry a zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
