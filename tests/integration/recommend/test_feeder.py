"""The stage feeder: a thread fills the next stage while the run's connection reads the last."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from reclaim.database import create_engine
from reclaim.recommend import record_run
from reclaim.recommend.feeder import StageFeeder
from reclaim.recommend.reconcile import Scope
from reclaim.recommend.store import RecommendationStore
from reclaim.store import upgrade

_STAGE = sa.Table(
    "stage",
    sa.MetaData(),
    sa.Column("position", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(20)),
    prefixes=["TEMPORARY"],
)


@pytest.fixture
def run_connection(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    # As a run's connection is: a file in WAL mode, inside a write transaction.
    connection = sqlite3.connect(tmp_path / "run.db", isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE target (position INTEGER PRIMARY KEY, name TEXT)")
    connection.execute("BEGIN IMMEDIATE")
    yield connection
    connection.execute("ROLLBACK")
    connection.close()


def test_the_next_batch_is_filled_in_a_thread_while_the_last_is_read(
    run_connection: sqlite3.Connection,
) -> None:
    filled_by: list[int] = []
    second_filled = threading.Event()

    def batches() -> Iterator[list[tuple[int, str]]]:
        for batch in range(3):
            filled_by.append(threading.get_ident())
            yield [(batch * 10 + n, f"row-{batch}-{n}") for n in range(3)]
            if batch == 1:
                second_filled.set()

    seen: list[list[tuple[int, str]]] = []
    with StageFeeder(run_connection, _STAGE, batches()) as feeder:
        for index, schema in enumerate(feeder):
            if index == 0:
                # The caller still reads the first stage: the second is filled meanwhile.
                assert second_filled.wait(timeout=10)
            seen.append(run_connection.execute(f"SELECT * FROM {schema}.stage").fetchall())
            run_connection.execute(f"INSERT INTO target SELECT * FROM {schema}.stage")
    assert seen == [[(b * 10 + n, f"row-{b}-{n}") for n in range(3)] for b in range(3)]
    assert run_connection.execute("SELECT count(*) FROM target").fetchone() == (9,)
    assert set(filled_by) == {filled_by[0]}
    assert filled_by[0] != threading.get_ident()


def test_an_error_while_filling_is_raised_to_the_reader(
    run_connection: sqlite3.Connection,
) -> None:
    def batches() -> Iterator[list[tuple[int, str]]]:
        yield [(1, "a")]
        raise ValueError("bad row")

    def read_all() -> None:
        with StageFeeder(run_connection, _STAGE, batches()) as feeder:
            for _schema in feeder:
                pass

    with pytest.raises(ValueError, match="bad row"):
        read_all()


def test_a_reader_that_stops_early_stops_the_filler(run_connection: sqlite3.Connection) -> None:
    made: list[int] = []

    def batches() -> Iterator[list[tuple[int, str]]]:
        for batch in range(100):
            made.append(batch)
            yield [(batch, "x")]

    with StageFeeder(run_connection, _STAGE, batches()) as feeder:
        for _schema in feeder:
            break
    # The first batch read, the second filled meanwhile, a third made at most while waiting.
    assert len(made) <= 3
    assert not any(thread.name == "reclaim-stage" for thread in threading.enumerate())


@pytest.mark.parametrize("shared", [True, False])
def test_runs_on_an_in_memory_database_attach_their_stages_anew(
    shared: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An in-memory database lives in one connection that is never closed: the stages a run
    # attached are detached once its transaction is over, so the next run can attach its own
    # (and without a shared cache, the next run empties the temporary stage the last one left).
    from reclaim.recommend import feeder as feeder_module

    monkeypatch.setattr(feeder_module, "shared_cache_available", lambda: shared)
    engine = create_engine("sqlite://")
    upgrade(engine)
    store = RecommendationStore(engine)
    scope = Scope(frozenset({"idle-vm"}))
    now = datetime(2026, 1, 5, tzinfo=UTC)
    for week in range(2):
        names = [f"i-{week}-{n}" for n in range(3)]
        result = record_run(
            store,
            pl.DataFrame(
                {
                    "fingerprint": [f"{week}{n}" * 8 for n in range(3)],
                    "rule_id": ["idle-vm"] * 3,
                    "resource_id": names,
                    "account_id": ["111"] * 3,
                    "monthly_savings": [1.0, 2.0, 3.0],
                }
            ),
            scope=scope,
            run_id=f"r{week}",
            now=now + timedelta(days=7 * week),
        )
        assert result.run.new == 3
    with engine.connect() as connection:
        attached = connection.exec_driver_sql("PRAGMA database_list").all()
    assert [row[1] for row in attached if row[1] not in ("main", "temp")] == []
    engine.dispose()


_KILLED_CHILD = """
import sys, time
from datetime import UTC, datetime
from pathlib import Path
import polars as pl
from reclaim.database import create_engine
from reclaim.recommend import record_run, store as store_module
from reclaim.recommend.reconcile import Scope
from reclaim.recommend.store import RecommendationStore

store_module.STAGE_BATCH = 4
new_rows = store_module._new_rows
marker = Path(sys.argv[2])

def slow(figures, order, start, length):
    # From the third batch on the first ones are in the table, uncommitted: say so and wait.
    if start >= 4:
        marker.touch()
        time.sleep(60)
    yield from new_rows(figures, order, start, length)

store_module._new_rows = slow
engine = create_engine("sqlite:///" + sys.argv[1])
n = 40
record_run(
    RecommendationStore(engine),
    pl.DataFrame({
        "fingerprint": [f"{i:032d}" for i in range(n)],
        "rule_id": ["idle-vm"] * n,
        "resource_id": [f"i-{i}" for i in range(n)],
        "account_id": ["111"] * n,
        "monthly_savings": [float(i) for i in range(n)],
    }),
    scope=Scope(frozenset({"idle-vm"})),
    run_id="killed",
    now=datetime(2026, 1, 5, tzinfo=UTC),
)
"""


def test_a_first_run_killed_while_the_feeder_fills_leaves_the_database_as_it_was(
    tmp_path: Path,
) -> None:
    # The stages live in memory and the rows inserted from them in the run's uncommitted
    # transaction: SIGKILL mid-write leaves no row, no run and no index missing.
    import os
    import signal
    import subprocess
    import sys
    import time

    database = tmp_path / "killed.db"
    engine = create_engine(f"sqlite:///{database}")
    upgrade(engine)
    with engine.connect() as connection:
        indexes_before = connection.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name"
        ).all()
    engine.dispose()
    marker = tmp_path / "filling"
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_CHILD, str(database), str(marker)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the run never reached its third batch"
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        assert connection.exec_driver_sql("SELECT count(*) FROM recommendations").scalar() == 0
        assert connection.exec_driver_sql("SELECT count(*) FROM recommendation_runs").scalar() == 0
        assert connection.exec_driver_sql("SELECT count(*) FROM observations").scalar() == 0
        indexes_after = connection.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name"
        ).all()
    assert indexes_after == indexes_before
    engine.dispose()


def test_without_a_shared_cache_the_stage_is_filled_in_the_run_thread_with_the_same_rows(
    run_connection: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A SQLite built without shared cache gives each connection its own in-memory database:
    # the run's connection would read empty stages, so its own temporary table is used.
    from reclaim.recommend import feeder as feeder_module

    monkeypatch.setattr(feeder_module, "shared_cache_available", lambda: False)
    filled_by: list[int] = []

    def batches() -> Iterator[list[tuple[int, str]]]:
        for batch in range(3):
            filled_by.append(threading.get_ident())
            yield [(batch * 10 + n, f"row-{batch}-{n}") for n in range(2)]

    with StageFeeder(run_connection, _STAGE, batches()) as feeder:
        assert feeder.schemas == ()
        for schema in feeder:
            run_connection.execute(f"INSERT INTO target SELECT * FROM {schema}.stage")
    assert run_connection.execute("SELECT count(*) FROM target").fetchone() == (6,)
    assert set(filled_by) == {threading.get_ident()}


def test_this_sqlite_shares_in_memory_databases() -> None:
    from reclaim.recommend.feeder import shared_cache_available

    assert shared_cache_available()
