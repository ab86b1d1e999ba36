"""The scheduler inside ``reclaim serve``: one run per tick however many schedulers run."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta

import httpx
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from reclaim.database import create_engine
from reclaim.durable import (
    CronExpression,
    DurableEngine,
    Schedule,
    Scheduler,
    StepContext,
    Workflow,
)
from reclaim.durable.schedule import schedules
from reclaim.durable.schema import runs
from reclaim.service import ScheduleLoop, ServiceMetrics, ServiceSettings, create_app
from reclaim.store import upgrade

Serve = Callable[[FastAPI], AbstractContextManager[httpx.Client]]

minutely = Workflow("service-test.minutely", version="1")


@minutely.step()
def report(ctx: StepContext) -> str:
    return "done"


def _add_overdue_schedule(engine: Engine, name: str) -> None:
    """A schedule whose ticks of the last few hours were all missed."""
    Scheduler(DurableEngine(engine)).add(
        Schedule(name=name, cron=CronExpression("*/5 * * * *"), workflow=minutely.name, input=None)
    )
    with engine.begin() as connection:
        created = connection.execute(
            sa.select(schedules.c.created_at).where(schedules.c.name == name)
        ).scalar_one()
        connection.execute(
            sa.update(schedules)
            .where(schedules.c.name == name)
            .values(created_at=created - timedelta(hours=3))
        )


def _runs(engine: Engine) -> list[str | None]:
    with engine.connect() as connection:
        return list(connection.execute(sa.select(runs.c.dedupe_key)).scalars())


def test_schedulers_of_several_services_start_one_run_per_tick(
    engine: Engine, database_url: tuple[str, str | None]
) -> None:
    upgrade(engine)
    _add_overdue_schedule(engine, "every-five")
    url, schema = database_url
    # Each loop has its own engine and connections, as two `reclaim serve` replicas would.
    engines = [create_engine(url, schema=schema) for _ in range(4)]
    loops = [ScheduleLoop(DurableEngine(e), metrics=ServiceMetrics(None)) for e in engines]
    barrier = threading.Barrier(len(loops))

    def race(loop: ScheduleLoop) -> None:
        barrier.wait()
        for _ in range(3):
            loop.tick()

    threads = [threading.Thread(target=race, args=(loop,)) for loop in loops]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for e in engines:
        e.dispose()
    keys = _runs(engine)
    assert len(keys) == 1
    assert keys[0] is not None
    assert keys[0].startswith("schedule:every-five@")
    created = [tick for loop in loops for tick in loop.fired if tick.created]
    assert len(created) == 1
    # Every loop that saw the tick got the same run back, never a second one.
    assert {tick.run_id for loop in loops for tick in loop.fired} == {created[0].run_id}


def test_serve_runs_the_scheduler_while_it_is_up(engine: Engine, serve: Serve) -> None:
    upgrade(engine)
    _add_overdue_schedule(engine, "in-serve")
    settings = ServiceSettings(schedule_interval=0.05)
    app = create_app(settings, engine=engine, dashboard=False)
    loop = app.state.scheduler
    assert isinstance(loop, ScheduleLoop)
    with serve(app) as client:
        assert loop.running
        pause = threading.Event()
        for _ in range(1200):
            if _runs(engine):
                break
            pause.wait(0.05)
        assert len(_runs(engine)) == 1
        assert 'reclaim_schedule_ticks_total{created="true"} 1.0' in client.get("/metrics").text
    # The app's shutdown stopped the loop.
    assert not loop.running
