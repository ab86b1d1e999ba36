"""Cron schedules: each tick of a schedule starts exactly one run of its workflow.

A schedule is a row of ``durable_schedules``: a name, a five-field cron expression, a
time zone, the workflow to start and its input. Any number of schedulers may run at
once (every ``reclaim worker`` runs one); they agree through the database, not with each other:

- the run a tick starts carries the dedupe key ``schedule:<name>@<tick in UTC>``, unique on
  ``durable_runs``, so two schedulers that see the same tick at the same moment create one run;
- the schedule row is then advanced to that tick with a conditional update, so a scheduler that
  lost the race, or crashed between the two writes, finds the tick already taken.

Missed ticks: when no scheduler ran for a while, the schedule starts **one** run, for the most
recent tick that is due, and skips the older ones (a weekly loop that was down for three weeks
runs once, not three times). A new schedule's first tick is the first one after it was created.
Times come from the database clock, so schedulers on machines whose clocks disagree still agree.
"""

from __future__ import annotations

__all__ = [
    "CronExpression",
    "Schedule",
    "ScheduleTick",
    "Scheduler",
    "dedupe_key",
    "due_tick",
    "next_tick",
    "schedules",
]

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from croniter import CroniterError, croniter  # type: ignore[import-untyped]

from reclaim.durable.engine import DurableEngine
from reclaim.durable.schema import UtcDateTime, metadata
from reclaim.durable.workflow import registry
from reclaim.errors import ConfigError

log = logging.getLogger(__name__)

schedules = sa.Table(
    "durable_schedules",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("cron", sa.String(200), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("workflow", sa.String(200), nullable=False),
    sa.Column("input", sa.Text, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    # The tick most recently turned into a run; ticks at or before it are never started again.
    sa.Column("last_tick_at", UtcDateTime()),
    sa.Column("last_run_id", sa.String(64)),
)


@dataclass(frozen=True)
class CronExpression:
    """A validated five-field cron expression, evaluated in a time zone (DST-aware).

    Six-field forms are refused: croniter reads a sixth field as seconds at the *end*, which no
    other cron does, and a schedule that means something else than it says is worse than none.
    """

    expression: str
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(
                f"unknown time zone {self.timezone!r}",
                fix="use an IANA name such as 'UTC' or 'Europe/Paris'",
            ) from exc
        fields = self.expression.split()
        if len(fields) != 5 or not croniter.is_valid(self.expression):
            raise ConfigError(
                f"invalid cron expression {self.expression!r}",
                fix="write five fields 'minute hour day-of-month month day-of-week', "
                "e.g. '0 6 * * MON' for 06:00 every Monday",
            )
        object.__setattr__(self, "_zone", zone)

    @property
    def zone(self) -> ZoneInfo:
        zone: ZoneInfo = self.__dict__["_zone"]
        return zone

    def _iter(self, start: datetime) -> Any:
        return croniter(self.expression, start.astimezone(self.zone))


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: schedule times must carry a zone")
    return value.astimezone(UTC)


def next_tick(cron: CronExpression, after: datetime) -> datetime:
    """The first tick strictly after ``after``, in UTC."""
    try:
        tick: datetime = cron._iter(_utc(after)).get_next(datetime)
    except CroniterError as exc:  # an expression that never fires, e.g. '0 0 30 2 *'
        raise ConfigError(
            f"cron expression {cron.expression!r} has no next tick",
            fix="check the day-of-month and month fields",
        ) from exc
    return _utc(tick)


def due_tick(cron: CronExpression, *, after: datetime, now: datetime) -> datetime | None:
    """The most recent tick ``t`` with ``after < t <= now``, or None when nothing is due.

    Older missed ticks in that window are deliberately dropped: the schedule runs the latest
    one once (see the module docstring).
    """
    after, now = _utc(after), _utc(now)
    if now <= after:
        return None
    try:
        # get_prev is strict, so a tick falling exactly on ``now`` needs the microsecond.
        latest = _utc(cron._iter(now + timedelta(microseconds=1)).get_prev(datetime))
    except CroniterError:
        return None
    return latest if latest > after else None


@dataclass(frozen=True)
class Schedule:
    """One schedule as stored. ``input`` is the workflow input, JSON-compatible."""

    name: str
    cron: CronExpression
    workflow: str
    input: Any
    enabled: bool = True
    created_at: datetime | None = None
    last_tick_at: datetime | None = None
    last_run_id: str | None = None

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 200 or self.name != self.name.strip():
            raise ConfigError(
                f"schedule name {self.name!r} must be 1 to 200 characters, without outer spaces"
            )
        try:
            json.dumps(self.input)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"schedule {self.name!r}: its input is not JSON ({exc})",
                fix="give the input as plain JSON (objects, lists, strings, numbers)",
            ) from exc


@dataclass(frozen=True)
class ScheduleTick:
    """A tick that a scheduler pass turned into a run (``created`` False: another one did)."""

    schedule: str
    tick: datetime
    run_id: str
    created: bool


def dedupe_key(schedule: str, tick: datetime) -> str:
    """The key that makes a tick start one run however many schedulers see it."""
    return f"schedule:{schedule}@{_utc(tick).strftime('%Y-%m-%dT%H:%M:%SZ')}"


def _row_to_schedule(row: Any) -> Schedule:
    m = row._mapping
    return Schedule(
        name=m["name"],
        cron=CronExpression(m["cron"], m["timezone"]),
        workflow=m["workflow"],
        input=json.loads(m["input"]),
        enabled=bool(m["enabled"]),
        created_at=m["created_at"],
        last_tick_at=m["last_tick_at"],
        last_run_id=m["last_run_id"],
    )


class Scheduler:
    """Stores schedules and turns their due ticks into runs; safe to run in many processes.

    ``tick()`` is one pass over the enabled schedules; ``reclaim worker`` calls it every few
    seconds. Schedules whose workflow is not registered in this process are left for a
    process that has its code.
    """

    def __init__(self, engine: DurableEngine) -> None:
        self.engine = engine
        self.store = engine.store

    # ------------------------------------------------------------ managing

    def add(self, schedule: Schedule, *, replace: bool = False) -> Schedule:
        """Store a schedule (``replace``: overwrite one of the same name, keeping its last tick).

        The workflow must be registered in this process, so a typo fails here and not at 3am.
        """
        self.engine.workflow(schedule.workflow)
        now = self.store.now()
        values = {
            "cron": schedule.cron.expression,
            "timezone": schedule.cron.timezone,
            "workflow": schedule.workflow,
            "input": json.dumps(schedule.input, sort_keys=True),
            "enabled": schedule.enabled,
            "updated_at": now,
        }
        with self.store.engine.begin() as connection:
            exists = connection.execute(
                sa.select(schedules.c.name).where(schedules.c.name == schedule.name)
            ).first()
            if exists is not None and not replace:
                raise ConfigError(
                    f"a schedule named {schedule.name!r} already exists",
                    fix="pick another name, or replace it (`reclaim schedules add --replace`)",
                )
            if exists is None:
                connection.execute(
                    sa.insert(schedules).values(name=schedule.name, created_at=now, **values)
                )
            else:
                connection.execute(
                    sa.update(schedules).where(schedules.c.name == schedule.name).values(**values)
                )
        return self.get(schedule.name)

    def get(self, name: str) -> Schedule:
        with self.store.engine.connect() as connection:
            row = connection.execute(sa.select(schedules).where(schedules.c.name == name)).first()
        if row is None:
            raise ConfigError(f"no schedule is named {name!r}", fix="see `reclaim schedules list`")
        return _row_to_schedule(row)

    def all(self) -> list[Schedule]:
        with self.store.engine.connect() as connection:
            rows = connection.execute(sa.select(schedules).order_by(schedules.c.name)).all()
        return [_row_to_schedule(row) for row in rows]

    def remove(self, name: str) -> bool:
        """Delete a schedule; runs it already started are kept. False if there was none."""
        with self.store.engine.begin() as connection:
            result = connection.execute(sa.delete(schedules).where(schedules.c.name == name))
        return result.rowcount == 1

    def set_enabled(self, name: str, enabled: bool) -> Schedule:
        """Pause or resume a schedule. Resuming does not replay the ticks missed while paused
        beyond the latest one (the missed-tick policy)."""
        # Read the clock first: on SQLite a second connection inside this write transaction
        # would wait on our own lock.
        now = self.store.now()
        with self.store.engine.begin() as connection:
            result = connection.execute(
                sa.update(schedules)
                .where(schedules.c.name == name)
                .values(enabled=enabled, updated_at=now)
            )
        if result.rowcount != 1:
            raise ConfigError(f"no schedule is named {name!r}", fix="see `reclaim schedules list`")
        return self.get(name)

    # ------------------------------------------------------------- firing

    def tick(self) -> list[ScheduleTick]:
        """Start one run for each enabled schedule with a due tick; return what was fired."""
        fired: list[ScheduleTick] = []
        known = set(self._known_workflows())
        for schedule in self.all():
            if not schedule.enabled or schedule.workflow not in known:
                continue
            tick = self.fire(schedule)
            if tick is not None:
                fired.append(tick)
        return fired

    def _known_workflows(self) -> list[str]:
        return registry.names()

    def fire(self, schedule: Schedule, *, now: datetime | None = None) -> ScheduleTick | None:
        """Start the run of ``schedule``'s due tick, if any (``now``: the database clock)."""
        now = self.store.now() if now is None else now
        after = schedule.last_tick_at or schedule.created_at
        if after is None:
            raise ValueError(f"schedule {schedule.name!r} was not read from the database")
        tick = due_tick(schedule.cron, after=after, now=now)
        if tick is None:
            return None
        proposed = uuid.uuid4().hex
        # The dedupe key makes this idempotent across schedulers: whoever comes second gets
        # the first one's run back instead of a new one.
        run_id = self.engine.start(
            schedule.workflow,
            schedule.input,
            run_id=proposed,
            dedupe_key=dedupe_key(schedule.name, tick),
        )
        with self.store.engine.begin() as connection:
            connection.execute(
                sa.update(schedules)
                .where(
                    schedules.c.name == schedule.name,
                    sa.or_(schedules.c.last_tick_at.is_(None), schedules.c.last_tick_at < tick),
                )
                .values(last_tick_at=tick, last_run_id=run_id)
            )
        created = run_id == proposed
        if created:
            log.info("schedule %s: tick %s started run %s", schedule.name, tick, run_id)
        return ScheduleTick(schedule.name, tick, run_id, created)
