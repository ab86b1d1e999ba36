"""On SQLite a recommend run plans before it takes the database's one write lock.

Every SQLite transaction of reclaim takes the write lock up front (BEGIN IMMEDIATE). A run
that loaded and planned a million recommendations inside its transaction kept every other
writer out for that long, the durable engine's heartbeat among them (issue 14: LeaseLost,
"database is locked"). The plan is now made from a lock-free read; what the tests hold it to:
another writer gets through while the run plans, and a recommend run recorded meanwhile makes
the plan be made again, so runs still never interleave.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from reclaim.database import create_engine
from reclaim.ingest import conform_facts
from reclaim.recommend import RecommendationStore, load_pack, recommend
from reclaim.recommend import recommender as recommender_module
from reclaim.store import upgrade

DATA_END = datetime(2026, 11, 1, tzinfo=UTC)


def idle_vms(count: int) -> pl.DataFrame:
    rows: list[dict[str, Any]] = [
        {
            "resource_id": f"i-{n}",
            "kind": "vm",
            "state": "running",
            "account_id": "111",
            "cost_30d": 100.0,
            "in_bill": True,
            "owner": "web",
            "tag_count": 1,
            "metric_days": 14.0,
            "cpu_max": 1.0,
            "network_avg": 1.0,
            "first_seen": DATA_END - timedelta(days=60),
            "last_seen": DATA_END,
            "as_of": DATA_END,
        }
        for n in range(count)
    ]
    return conform_facts(pl.DataFrame(rows)).collect()


def try_to_write(path: Path) -> str:
    """What another writer gets: 'wrote', or SQLite's error after a short wait."""
    other = sqlite3.connect(path, timeout=0.5, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return "wrote"
    except sqlite3.OperationalError as exc:
        return str(exc)
    finally:
        other.close()


def test_another_writer_gets_through_while_a_run_plans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "reclaim.db"
    engine = create_engine(f"sqlite:///{path}")
    upgrade(engine)
    seen: list[str] = []
    plan = recommender_module.plan_reconcile

    def planning(*args: Any, **kwargs: Any) -> Any:
        seen.append(try_to_write(path))
        return plan(*args, **kwargs)

    monkeypatch.setattr(recommender_module, "plan_reconcile", planning)
    result = recommend(engine, idle_vms(3), load_pack(), run_id="w1", now=DATA_END)
    assert seen == ["wrote"]
    assert result.run.new == 3
    engine.dispose()


def test_a_run_recorded_while_another_plans_makes_it_plan_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'reclaim.db'}")
    upgrade(engine)
    pack = load_pack()
    facts = idle_vms(3)
    plan = recommender_module.plan_reconcile
    calls: list[int] = []

    def planning(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            # Another recommend run over the same facts starts and finishes now.
            recommend(engine, facts, pack, run_id="other", now=DATA_END)
        return plan(*args, **kwargs)

    monkeypatch.setattr(recommender_module, "plan_reconcile", planning)
    result = recommend(engine, facts, pack, run_id="w1", now=DATA_END)
    # Planned three times: the first plan, the other run's, and this run's again in the lock.
    assert len(calls) == 3
    # Planned on what the other run stored: seen again, nothing new, no row lost to conflicts.
    assert (result.run.new, result.run.seen_again, result.run.conflicts) == (0, 3, 0)
    assert len(RecommendationStore(engine).find(limit=None)) == 3
    engine.dispose()


def test_a_run_writes_with_a_page_cache_for_its_indexes_and_gives_it_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With SQLite's default 2 MiB cache a run's inserts into the savings-ordered indexes kept
    # re-reading and spilling pages: the write phase of 200,000 new rows took 3x the time.
    from reclaim.recommend import store as store_module

    engine = create_engine(f"sqlite:///{tmp_path / 'reclaim.db'}")
    upgrade(engine)
    with engine.connect() as connection:
        default = connection.exec_driver_sql("PRAGMA cache_size").scalar_one()
    seen: list[int] = []
    write_plan = store_module.RecommendationStore.write_plan

    def writing(self: Any, connection: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(connection.exec_driver_sql("PRAGMA cache_size").scalar_one())
        return write_plan(self, connection, *args, **kwargs)

    monkeypatch.setattr(store_module.RecommendationStore, "write_plan", writing)
    result = recommend(engine, idle_vms(3), load_pack(), run_id="w1", now=DATA_END)
    assert result.run.new == 3
    assert seen == [-store_module.RUN_CACHE_KIB]
    assert store_module.RUN_CACHE_KIB >= 65_536
    # The pooled connection the run used is back to the default for whoever takes it next.
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA cache_size").scalar_one() == default
    engine.dispose()


def test_the_staging_table_goes_with_its_connection_not_with_a_drop(tmp_path: Path) -> None:
    # Dropping the in-memory stage inside the run's transaction copied its pages into the
    # temporary database's journal, in memory: ~330 MiB more at 915,000 rows, the peak of a
    # 1 M-resource run. The run's connection is closed instead, and the next run works.
    import sqlalchemy as sa

    engine = create_engine(f"sqlite:///{tmp_path / 'reclaim.db'}")
    upgrade(engine)
    statements: list[str] = []

    def remember(_conn: object, _cursor: object, sql: str, *_: object) -> None:
        statements.append(sql)

    sa.event.listen(engine, "before_cursor_execute", remember)
    first = recommend(engine, idle_vms(3), load_pack(), run_id="w1", now=DATA_END)
    second = recommend(engine, idle_vms(4), load_pack(), run_id="w2", now=DATA_END)
    sa.event.remove(engine, "before_cursor_execute", remember)
    assert (first.run.new, second.run.new, second.run.seen_again) == (3, 1, 3)
    assert any("CREATE TEMPORARY TABLE recommend_stage" in sql for sql in statements)
    assert not [sql for sql in statements if "DROP TABLE" in sql.upper()]
    engine.dispose()


def test_an_in_memory_database_keeps_its_one_connection_across_runs() -> None:
    engine = create_engine("sqlite://")
    upgrade(engine)
    first = recommend(engine, idle_vms(3), load_pack(), run_id="w1", now=DATA_END)
    second = recommend(engine, idle_vms(3), load_pack(), run_id="w2", now=DATA_END)
    assert (first.run.new, second.run.seen_again) == (3, 3)
    assert len(RecommendationStore(engine).find(limit=None)) == 3
    engine.dispose()
