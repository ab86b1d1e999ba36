"""The schedules of reclaim.yaml, installed by the services that read it, on both backends.

``reclaim serve`` (its scheduler's first pass) and ``reclaim worker`` install the file's
schedules of the weekly loop; racing services install each once; editing the file edits the
schedule; a tick starts the loop with the file's settings, which a worker then runs.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from tests.integration.service.conftest import Serve

from reclaim.cli.config import configured_schedules
from reclaim.cli.run import weekly_input
from reclaim.config import ReclaimConfig, load_config
from reclaim.database import create_engine
from reclaim.durable import CronExpression, DurableEngine, RunStatus, Schedule, Scheduler
from reclaim.durable.schedule import schedules
from reclaim.durable.schema import runs
from reclaim.durable.worker import Worker
from reclaim.pipeline import WEEKLY
from reclaim.service import (
    WEEKLY_WORKFLOW,
    ConfiguredSchedules,
    ScheduleChange,
    ScheduleLoop,
    ServiceMetrics,
    ServiceSettings,
    configured_origins,
    create_app,
)
from reclaim.store import upgrade
from reclaim.store.tables.recommend import recommendations
from reclaim.tickets.simulator import JiraState, RunningSimulator, SimulatorApp, run_in_thread

TOKEN_ENV = "RECLAIM_TEST_SCHEDULED_TOKEN"

RULE = """\
version: 1
kind: savings
name: scheduled
rules:
  - id: scheduled-vm-review
    when: kind == 'vm' and cost_30d > 0
    action: recommend
    params:
      type: review
      title: "Review VM {resource_id}"
      savings: round(cost_30d, 2)
      method: "'run rate'"
"""


def write_config(
    folder: Path, schedules_yaml: str, *, project: str = "FIN", extra: str = ""
) -> ReclaimConfig:
    path = folder / "reclaim.yaml"
    path.write_text(
        "sources:\n  sample: true\n"
        f"rules:\n  default_project: {project}\n"
        f"{extra}"
        f"schedules:\n{schedules_yaml}",
        encoding="utf-8",
    )
    return load_config(path)


WEEKLY_MON = '  - name: weekly\n    cron: "0 6 * * MON"\n'
WEEKLY_TUE = '  - name: weekly\n    cron: "30 7 * * TUE"\n    timezone: Europe/Paris\n'
DAILY = '  - name: daily\n    cron: "0 5 * * *"\n'
OFTEN = '  - name: often\n    cron: "*/5 * * * *"\n'


def installer(engine: Engine, config: ReclaimConfig) -> ConfiguredSchedules:
    return ConfiguredSchedules(
        DurableEngine(engine), configured_schedules(config), source=str(config.path)
    )


def stored(engine: Engine) -> dict[str, Schedule]:
    return {item.name: item for item in Scheduler(DurableEngine(engine)).all()}


def backdate(engine: Engine, name: str, hours: float) -> None:
    """Pretend the schedule was installed ``hours`` ago and never fired since."""
    with engine.begin() as connection:
        created = connection.execute(
            sa.select(schedules.c.created_at).where(schedules.c.name == name)
        ).scalar_one()
        connection.execute(
            sa.update(schedules)
            .where(schedules.c.name == name)
            .values(created_at=created - timedelta(hours=hours), last_tick_at=None)
        )


def run_keys(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return [str(key) for key in connection.execute(sa.select(runs.c.dedupe_key)).scalars()]


def test_the_configured_workflow_is_the_weekly_loop() -> None:
    assert WEEKLY.name == WEEKLY_WORKFLOW


def test_an_install_that_loses_the_race_twice_still_installs(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With several services starting at once, the pass after a lost insert of the schedule
    # can lose again on the record that the file owns it (seen with four services).
    upgrade(engine)
    config = write_config(tmp_path, WEEKLY_MON)
    configured = installer(engine, config)
    write = configured._write
    lost = [sa.exc.IntegrityError("INSERT", {}, Exception("duplicate key"))] * 2

    def racing(item: Schedule) -> ScheduleChange:
        if lost:
            raise lost.pop()
        return write(item)

    monkeypatch.setattr(configured, "_write", racing)
    changes = configured.install()
    assert [(change.name, change.action) for change in changes] == [("weekly", "added")]
    assert not lost


def test_two_services_starting_at_once_install_each_schedule_once(
    engine: Engine, database_url: tuple[str, str | None], tmp_path: Path
) -> None:
    upgrade(engine)
    config = write_config(tmp_path, WEEKLY_MON + OFTEN)
    url, schema = database_url
    # Each service has its own engine and connections, as two `reclaim serve` replicas would.
    engines = [create_engine(url, schema=schema) for _ in range(4)]
    loops = [
        ScheduleLoop(
            DurableEngine(e), metrics=ServiceMetrics(None), configured=installer(e, config)
        )
        for e in engines
    ]
    barrier = threading.Barrier(len(loops))

    def start(loop: ScheduleLoop) -> None:
        barrier.wait()
        loop.tick()  # a service's first pass installs, then fires what is due

    threads = [threading.Thread(target=start, args=(loop,)) for loop in loops]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # Every service installed without an error (a lost race on the name is retried).
    assert all(loop.installed is not None for loop in loops)
    added = Counter(
        change.name for loop in loops for change in loop.installed or [] if change.action == "added"
    )
    assert set(added) == {"weekly", "often"}
    found = stored(engine)
    assert sorted(found) == ["often", "weekly"]
    assert found["weekly"].cron == CronExpression("0 6 * * MON")
    assert found["weekly"].workflow == WEEKLY_WORKFLOW
    assert set(configured_origins(engine)) == {"often", "weekly"}

    # Then the services' schedulers race for a due tick: one run.
    backdate(engine, "often", hours=1)
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
    keys = run_keys(engine)
    assert len(keys) == 1
    assert keys[0].startswith("schedule:often@")
    assert sum(tick.created for loop in loops for tick in loop.fired) == 1


def test_editing_the_file_edits_the_schedules_it_installed_and_no_other(
    engine: Engine, tmp_path: Path
) -> None:
    upgrade(engine)
    durable = DurableEngine(engine)
    # Made by hand (`reclaim schedules add`): the file must leave it alone.
    Scheduler(durable).add(
        Schedule("by-hand", CronExpression("0 0 1 * *"), WEEKLY_WORKFLOW, {"sample": True})
    )
    first = write_config(tmp_path, WEEKLY_MON + DAILY)
    assert {c.name: c.action for c in installer(engine, first).install()} == {
        "weekly": "added",
        "daily": "added",
    }
    Scheduler(durable).set_enabled("daily", False)
    # Starting again with the same file changes nothing.
    assert {c.action for c in installer(engine, first).install()} == {"unchanged"}

    # The cron and zone of one change in the file, and the loop's settings of both.
    edited = write_config(tmp_path, WEEKLY_TUE + DAILY, project="OPS")
    plan = {c.name: c for c in installer(engine, edited).plan()}
    assert plan["weekly"].action == "updated"
    assert "'0 6 * * MON' UTC → '30 7 * * TUE' Europe/Paris" in plan["weekly"].detail
    assert (plan["daily"].action, plan["daily"].detail) == (
        "updated",
        "the loop's settings changed",
    )
    assert stored(engine)["weekly"].cron == CronExpression("0 6 * * MON")  # plan wrote nothing
    installer(engine, edited).install()
    found = stored(engine)
    assert found["weekly"].cron == CronExpression("30 7 * * TUE", "Europe/Paris")
    assert found["daily"].input["default_project"] == "OPS"
    assert found["daily"].enabled is False  # a paused schedule stays paused

    # The file drops one: it goes; the one made by hand stays.
    dropped = write_config(tmp_path, WEEKLY_TUE, project="OPS")
    changes = {c.name: c.action for c in installer(engine, dropped).install()}
    assert changes == {"weekly": "unchanged", "daily": "removed"}
    assert sorted(stored(engine)) == ["by-hand", "weekly"]
    assert set(configured_origins(engine)) == {"weekly"}


def test_a_new_cron_starts_from_the_edit_and_new_settings_keep_the_last_tick(
    engine: Engine, tmp_path: Path
) -> None:
    upgrade(engine)
    loop = ScheduleLoop(DurableEngine(engine), metrics=ServiceMetrics(None))
    installer(engine, write_config(tmp_path, OFTEN)).install()
    backdate(engine, "often", hours=1)
    # Other settings, same cron: the ticks missed meanwhile are still missed (one run).
    resettled = write_config(tmp_path, OFTEN, project="OPS")
    assert [c.action for c in installer(engine, resettled).install()] == ["updated"]
    assert len(loop.tick()) == 1
    # A new cron: its ticks before the edit are not missed ticks, nothing fires now.
    backdate(engine, "often", hours=1)
    every_ten = write_config(tmp_path, OFTEN.replace("*/5", "*/10"), project="OPS")
    assert [c.action for c in installer(engine, every_ten).install()] == ["updated"]
    assert loop.tick() == []


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningSimulator]:
    monkeypatch.setenv(TOKEN_ENV, "t")
    with run_in_thread(SimulatorApp(JiraState())) as running:
        yield running


def test_a_run_fired_by_the_schedule_runs_the_loop_as_the_file_says(
    engine: Engine, tmp_path: Path, sim: RunningSimulator, serve: Serve
) -> None:
    upgrade(engine)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "review.yaml").write_text(RULE, encoding="utf-8")
    config = write_config(
        tmp_path,
        WEEKLY_MON,
        extra=(
            "  savings: rules/review.yaml\n"
            "snooze:\n  wont_do_days: 30\n"
            "jira:\n"
            f"  url: {sim.url}\n"
            "  email: bot@example.com\n"
            f"  api_token_env: {TOKEN_ENV}\n"
            "  requests_per_second: null\n"
            "  grace_seconds: 0\n"
        ),
    )
    # `reclaim serve` with this file: the scheduler's first pass installs the schedule.
    app = create_app(
        ServiceSettings(schedule_interval=0.05),
        engine=engine,
        dashboard=False,
        schedules=configured_schedules(config),
        schedules_source=str(config.path),
    )
    loop = app.state.scheduler
    assert isinstance(loop, ScheduleLoop)
    with serve(app):
        pause = threading.Event()
        for _ in range(1200):
            if loop.installed is not None:
                break
            pause.wait(0.05)
        assert [c.action for c in loop.installed or []] == ["added"]
        backdate(engine, "weekly", hours=24 * 8)
        for _ in range(1200):
            if run_keys(engine):
                break
            pause.wait(0.05)
    (key,) = run_keys(engine)
    assert key.startswith("schedule:weekly@")
    durable = DurableEngine(engine)
    (run,) = durable.list_runs(workflow=WEEKLY_WORKFLOW)
    # The run's input is what `reclaim run` builds from the same file.
    assert json.loads(durable.get_run(run.id).input) == weekly_input(config).model_dump(mode="json")

    # A worker runs it: the file's rules, project and Jira site, not the defaults.
    stats = Worker(durable, poll_interval=0.05, schedules=False, lease_seconds=10).run(max_runs=1)
    assert stats.succeeded == 1
    assert durable.get_run(run.id).status is RunStatus.SUCCEEDED
    with engine.connect() as connection:
        rules = set(connection.execute(sa.select(recommendations.c.rule_id)).scalars())
    assert rules == {"scheduled-vm-review"}
    projects = Counter(issue.project.key for issue in sim.app.state.issues.values())
    assert set(projects) == {"FIN"}
    assert sum(projects.values()) > 0
