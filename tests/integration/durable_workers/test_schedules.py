"""Cron schedules on a real database: one run per tick however many schedulers race for it."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from reclaim.database import create_engine
from reclaim.durable import DurableEngine, RunStatus, StepContext, Store, Workflow
from reclaim.durable.schedule import (
    CronExpression,
    Schedule,
    Scheduler,
    dedupe_key,
    schedules,
)
from reclaim.durable.worker import Worker
from reclaim.errors import ConfigError

hourly_job = Workflow("hourly-job", version="1")


@hourly_job.step()
def report(ctx: StepContext) -> str:
    return f"report for {ctx.input['tenant']}"


HOURLY = CronExpression("0 * * * *")


@pytest.fixture
def durable(engine: Engine) -> DurableEngine:
    store = Store(engine)
    store.ensure_schema()
    return DurableEngine(store)


def _backdate(engine: Engine, name: str, hours: float) -> None:
    """Pretend the schedule was created ``hours`` ago (and never fired since)."""
    with engine.begin() as connection:
        created = connection.execute(
            sa.select(schedules.c.created_at).where(schedules.c.name == name)
        ).scalar_one()
        connection.execute(
            sa.update(schedules)
            .where(schedules.c.name == name)
            .values(created_at=created - timedelta(hours=hours), last_tick_at=None)
        )


def test_racing_schedulers_start_exactly_one_run_for_the_latest_missed_tick(
    durable: DurableEngine, database_url: tuple[str, str | None]
) -> None:
    scheduler = Scheduler(durable)
    scheduler.add(Schedule("hourly", HOURLY, "hourly-job", {"tenant": "acme"}))
    _backdate(durable.store.engine, "hourly", hours=5)

    url, schema = database_url
    racers = 6
    barrier = threading.Barrier(racers)
    results: list[list[object]] = []
    errors: list[BaseException] = []

    def race() -> None:
        engine = create_engine(url, schema=schema)
        try:
            own = Scheduler(DurableEngine(engine))
            barrier.wait()
            results.append(list(own.tick()))
        except BaseException as exc:
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=race) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors

    runs = durable.list_runs(workflow="hourly-job")
    assert len(runs) == 1, "five missed ticks and six schedulers must make one run"
    fired = [tick for ticks in results for tick in ticks]
    assert sum(tick.created for tick in fired) == 1  # type: ignore[attr-defined]
    assert {tick.run_id for tick in fired} == {runs[0].id}  # type: ignore[attr-defined]
    stored = scheduler.get("hourly")
    assert stored.last_tick_at is not None
    assert runs[0].dedupe_key == dedupe_key("hourly", stored.last_tick_at)
    assert stored.last_tick_at.minute == 0
    assert stored.last_run_id == runs[0].id

    # The tick is taken: another pass in the same hour starts nothing.
    assert scheduler.tick() == []
    assert len(durable.list_runs(workflow="hourly-job")) == 1


def test_each_later_tick_starts_one_more_run(durable: DurableEngine) -> None:
    scheduler = Scheduler(durable)
    stored = scheduler.add(Schedule("hourly", HOURLY, "hourly-job", {"tenant": "acme"}))
    assert stored.created_at is not None
    start = stored.created_at.replace(minute=0, second=0, microsecond=0)
    first = scheduler.fire(stored, now=start + timedelta(hours=1, minutes=1))
    assert first is not None
    assert first.created
    assert first.tick == start + timedelta(hours=1)
    again = scheduler.fire(scheduler.get("hourly"), now=start + timedelta(hours=1, minutes=30))
    assert again is None
    # A stale copy of the schedule (read before the first fire) gets the same run back.
    stale = scheduler.fire(stored, now=start + timedelta(hours=1, minutes=2))
    assert stale is not None
    assert not stale.created
    assert stale.run_id == first.run_id
    later = scheduler.fire(scheduler.get("hourly"), now=start + timedelta(hours=4))
    assert later is not None
    assert later.created
    assert later.tick == start + timedelta(hours=4)
    assert len(durable.list_runs(workflow="hourly-job")) == 2


def test_paused_schedules_do_not_fire(durable: DurableEngine) -> None:
    scheduler = Scheduler(durable)
    scheduler.add(Schedule("hourly", HOURLY, "hourly-job", {"tenant": "acme"}))
    _backdate(durable.store.engine, "hourly", hours=2)
    scheduler.set_enabled("hourly", False)
    assert scheduler.tick() == []
    scheduler.set_enabled("hourly", True)
    assert len(scheduler.tick()) == 1


def test_a_schedule_needs_a_known_workflow_and_a_free_name(durable: DurableEngine) -> None:
    scheduler = Scheduler(durable)
    with pytest.raises(ConfigError, match="no workflow named 'nope'"):
        scheduler.add(Schedule("x", HOURLY, "nope", None))
    scheduler.add(Schedule("x", HOURLY, "hourly-job", {"tenant": "a"}))
    with pytest.raises(ConfigError, match="already exists"):
        scheduler.add(Schedule("x", HOURLY, "hourly-job", {"tenant": "b"}))
    replaced = scheduler.add(Schedule("x", HOURLY, "hourly-job", {"tenant": "b"}), replace=True)
    assert replaced.input == {"tenant": "b"}
    assert scheduler.remove("x")
    assert not scheduler.remove("x")


def test_a_worker_fires_due_schedules_and_runs_them(durable: DurableEngine) -> None:
    Scheduler(durable).add(Schedule("hourly", HOURLY, "hourly-job", {"tenant": "acme"}))
    _backdate(durable.store.engine, "hourly", hours=1)
    worker = Worker(durable, poll_interval=0.05, schedule_interval=0.05, lease_seconds=5)
    stats = worker.run(max_runs=1)
    assert stats.scheduled == 1
    assert stats.succeeded == 1
    (run,) = durable.list_runs(workflow="hourly-job")
    assert run.status is RunStatus.SUCCEEDED
    assert durable.result(run.id) == "report for acme"


def test_schedules_command_line(tmp_path: Path) -> None:
    from reclaim.cli.app import app

    db = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = create_engine(db)
    Store(engine).ensure_schema()
    engine.dispose()
    runner = CliRunner()
    added = runner.invoke(
        app,
        [
            "--db",
            db,
            "schedules",
            "add",
            "weekly",
            "--cron",
            "0 6 * * MON",
            "--workflow",
            "hourly-job",
            "--input",
            '{"tenant": "acme"}',
        ],
    )
    assert added.exit_code == 0, added.output
    assert "next tick" in added.output
    listed = runner.invoke(app, ["--db", db, "schedules", "list"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    assert "weekly" in listed.output
    assert "0 6 * * MON" in listed.output
    bad = runner.invoke(
        app,
        ["--db", db, "schedules", "add", "bad", "--cron", "61 * * * *", "-w", "hourly-job"],
    )
    assert bad.exit_code != 0
    assert isinstance(bad.exception, ConfigError)
    assert "invalid cron expression" in str(bad.exception)
    paused = runner.invoke(app, ["--db", db, "schedules", "pause", "weekly"])
    assert paused.exit_code == 0, paused.output
    removed = runner.invoke(app, ["--db", db, "schedules", "remove", "weekly"])
    assert removed.exit_code == 0, removed.output
