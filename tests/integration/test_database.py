"""The engine factory sets each backend up for concurrent, durable use."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from reclaim.database import Backend, backend_of, check_connection, create_engine
from reclaim.errors import DatabaseError


def test_sqlite_is_configured_for_concurrency_and_durability(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'nested' / 'dir' / 'r.db'}")
    with engine.connect() as connection:
        pragma = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
        }
    assert pragma == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": 30000,
        "synchronous": 2,
    }
    assert backend_of(engine) is Backend.SQLITE


def test_sqlite_transactions_take_the_write_lock_up_front(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    first, second = create_engine(f"sqlite:///{path}"), create_engine(f"sqlite:///{path}")
    with first.begin() as connection:
        connection.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    raw = second.raw_connection()
    raw.driver_connection.execute("PRAGMA busy_timeout=0")  # type: ignore[union-attr]
    with first.begin() as connection:
        connection.execute(sa.text("SELECT * FROM t")).all()
        # Even a read-only transaction holds the reserved lock, so another writer cannot begin.
        with pytest.raises(Exception, match="locked"):
            raw.driver_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
    raw.close()


def test_a_read_only_sqlite_engine_reads_a_snapshot_beside_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    writer = create_engine(f"sqlite:///{path}")
    reader = create_engine(f"sqlite:///{path}", read_only=True)
    with writer.begin() as connection:
        connection.execute(sa.text("CREATE TABLE t (x INTEGER)"))
        connection.execute(sa.text("INSERT INTO t VALUES (1)"))
    with reader.begin() as reading:
        assert reading.execute(sa.text("SELECT count(*) FROM t")).scalar_one() == 1
        # The reader holds no write lock: a writer commits meanwhile, without waiting...
        raw = writer.raw_connection()
        raw.driver_connection.execute("PRAGMA busy_timeout=0")  # type: ignore[union-attr]
        raw.driver_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
        raw.driver_connection.execute("INSERT INTO t VALUES (2)")  # type: ignore[union-attr]
        raw.driver_connection.execute("COMMIT")  # type: ignore[union-attr]
        raw.close()
        # ...and the reader's transaction still sees its snapshot.
        assert reading.execute(sa.text("SELECT count(*) FROM t")).scalar_one() == 1
    with reader.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM t")).scalar_one() == 2
        with pytest.raises(sa.exc.OperationalError, match="readonly"):
            connection.execute(sa.text("INSERT INTO t VALUES (3)"))


def test_both_backends_round_trip(engine: Engine) -> None:
    check_connection(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE probe (id INTEGER PRIMARY KEY, note TEXT)"))
        connection.execute(sa.text("INSERT INTO probe (id, note) VALUES (1, 'hello')"))
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT note FROM probe")).scalar_one() == "hello"


def test_unreachable_postgres_is_reported_with_a_fix() -> None:
    engine = create_engine("postgresql://nobody:secret@127.0.0.1:1/none")
    with pytest.raises(DatabaseError) as caught:
        check_connection(engine)
    message = str(caught.value)
    assert "cannot connect" in message
    assert "secret" not in message
    assert "RECLAIM_DATABASE_URL" in message
