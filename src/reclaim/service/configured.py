"""The schedules a ``reclaim.yaml`` names, installed as durable schedules of the weekly loop.

``reclaim serve`` and ``reclaim worker`` (when they run a scheduler) call
:meth:`ConfiguredSchedules.install` at start, so the file is the source of truth:

- a schedule the file names is added, or updated when its cron, time zone or the loop's
  settings changed (a paused one stays paused);
- a schedule installed from the file that the file no longer names is removed; a schedule made
  with ``reclaim schedules add`` is left alone (the ``config_schedules`` table records which
  ones came from the file);
- when the cron or time zone changes, the new cron's first tick is the first one after the
  change, as when a crontab is edited; when only the settings change, the last tick is kept.

Each tick runs the workflow ``reclaim run`` runs, with the input ``reclaim run`` would build
from the same file, so a scheduled week and a week run by hand are the same run.

Several processes may install at the same moment: each write is idempotent, and an insert that
loses a race on the name is retried as an update. Exactly one run per tick does not depend on
this: it comes from the tick's dedupe key (see :mod:`reclaim.durable.schedule`).
"""

from __future__ import annotations

__all__ = [
    "WEEKLY_WORKFLOW",
    "ConfiguredSchedules",
    "ScheduleChange",
    "configured_origins",
    "forget_configured",
    "weekly_schedules",
]

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from reclaim.config import ReclaimConfig
from reclaim.durable import CronExpression, DurableEngine, Schedule, Scheduler
from reclaim.errors import ConfigError
from reclaim.store.tables.service import config_schedules

log = logging.getLogger(__name__)

# The weekly loop's workflow (``reclaim.pipeline.WEEKLY``), named here so that reading the
# configured schedules does not import the whole pipeline; a test checks the two agree.
WEEKLY_WORKFLOW = "reclaim.weekly"

# Passes of one schedule's install before a lost race is an error: every lost race means
# another process wrote the row meanwhile, so the passes needed are bounded by the writes.
_RACE_PASSES = 5

Action = Literal["added", "updated", "unchanged", "removed"]


@dataclass(frozen=True)
class ScheduleChange:
    """What installing did (or would do) to one schedule; ``detail`` says why, for a person."""

    name: str
    action: Action
    detail: str = ""

    def __str__(self) -> str:
        return f"schedule {self.name}: {self.action}" + (f" ({self.detail})" if self.detail else "")


def weekly_schedules(config: ReclaimConfig, weekly_input: Mapping[str, Any]) -> list[Schedule]:
    """The schedules ``config`` names, each starting the weekly loop with ``weekly_input``.

    ``weekly_input`` is what ``reclaim run`` would run with this file (JSON-compatible);
    the caller builds it, so a scheduled run and a run by hand read the same settings.
    """
    return [
        Schedule(
            name=item.name,
            cron=CronExpression(item.cron, item.timezone),
            workflow=WEEKLY_WORKFLOW,
            input=dict(weekly_input),
        )
        for item in config.schedules
    ]


def configured_origins(engine: Engine) -> dict[str, str]:
    """Name → configuration file, for every schedule installed from a configuration file."""
    with engine.connect() as connection:
        if not _has_origins(connection):
            return {}
        rows = connection.execute(
            sa.select(config_schedules.c.name, config_schedules.c.config)
        ).all()
    return {str(name): str(config) for name, config in rows}


def forget_configured(engine: Engine, name: str) -> bool:
    """Stop treating ``name`` as installed from a file (``reclaim schedules add --replace``
    took it over); True if it was."""
    with engine.begin() as connection:
        if not _has_origins(connection):
            return False
        result = connection.execute(
            sa.delete(config_schedules).where(config_schedules.c.name == name)
        )
    return result.rowcount == 1


def _has_origins(connection: sa.Connection) -> bool:
    # A database made by the durable engine alone (``Store.ensure_schema``, embedding
    # reclaim.durable without reclaim) has schedules but no table of their origins; nothing
    # was installed from a file there.
    return sa.inspect(connection).has_table(config_schedules.name)


def _same_input(left: Any, right: Any) -> bool:
    return json.dumps(left, sort_keys=True) == json.dumps(right, sort_keys=True)


class ConfiguredSchedules:
    """Makes the stored schedules match the ones a configuration file names.

    ``source`` is the file's path: it is shown beside each schedule (``reclaim schedules list``)
    and never decides anything, so two machines reading the same file at different paths
    agree on what is installed.
    """

    def __init__(self, engine: DurableEngine, wanted: Sequence[Schedule], *, source: str) -> None:
        names = [schedule.name for schedule in wanted]
        if len(set(names)) != len(names):
            raise ConfigError(
                "two configured schedules share a name", fix="give each schedule its own name"
            )
        self.engine = engine
        self.wanted = list(wanted)
        self.source = source
        self.scheduler = Scheduler(engine)

    def plan(self) -> list[ScheduleChange]:
        """What :meth:`install` would change, without changing anything."""
        stored = {schedule.name: schedule for schedule in self.scheduler.all()}
        owned = configured_origins(self.engine.store.engine)
        changes = [
            self._change(item, stored.get(item.name), item.name in owned) for item in self.wanted
        ]
        wanted = {item.name for item in self.wanted}
        changes += [
            ScheduleChange(name, "removed", "no longer in the configuration")
            for name in sorted(owned)
            if name not in wanted and name in stored
        ]
        return changes

    def install(self) -> list[ScheduleChange]:
        """Add, update and remove schedules until the database matches the file."""
        changes = [self._install_one(item) for item in self.wanted]
        wanted = {item.name for item in self.wanted}
        for name in sorted(configured_origins(self.engine.store.engine)):
            if name in wanted:
                continue
            removed = self.scheduler.remove(name)
            forget_configured(self.engine.store.engine, name)
            if removed:
                changes.append(ScheduleChange(name, "removed", "no longer in the configuration"))
        for change in changes:
            if change.action != "unchanged":
                log.info("%s, from %s", change, self.source)
        return changes

    def _install_one(self, item: Schedule) -> ScheduleChange:
        for _ in range(_RACE_PASSES - 1):
            try:
                return self._write(item)
            except IntegrityError:
                # Another process inserted the same name between our read and our insert;
                # its row is there now, so the next pass reads it and updates it (or keeps
                # it). A pass writes two tables (the schedule, then the record that the file
                # owns it), so with several processes a pass can lose on either: one pass
                # more was not always enough for four services started at once.
                continue
        return self._write(item)

    def _write(self, item: Schedule) -> ScheduleChange:
        try:
            stored: Schedule | None = self.scheduler.get(item.name)
        except ConfigError:
            stored = None
        owned = item.name in configured_origins(self.engine.store.engine)
        change = self._change(item, stored, owned)
        if stored is None:
            self.scheduler.add(item, replace=True)
        elif change.action == "updated":
            kept = replace(item, enabled=stored.enabled)
            if (stored.cron.expression, stored.cron.timezone) != (
                item.cron.expression,
                item.cron.timezone,
            ):
                # A new cron starts from now: its ticks before this moment are not "missed".
                self.scheduler.remove(item.name)
            self.scheduler.add(kept, replace=True)
        if change.action != "unchanged":
            self._own(item.name)
        return change

    @staticmethod
    def _change(item: Schedule, stored: Schedule | None, owned: bool) -> ScheduleChange:
        if stored is None:
            return ScheduleChange(
                item.name, "added", f"'{item.cron.expression}' {item.cron.timezone}"
            )
        reasons = []
        if (stored.cron.expression, stored.cron.timezone) != (
            item.cron.expression,
            item.cron.timezone,
        ):
            reasons.append(
                f"cron '{stored.cron.expression}' {stored.cron.timezone} → "
                f"'{item.cron.expression}' {item.cron.timezone}"
            )
        if stored.workflow != item.workflow:
            reasons.append(f"workflow {stored.workflow} → {item.workflow}")
        if not _same_input(stored.input, item.input):
            reasons.append("the loop's settings changed")
        if not owned:
            reasons.append("takes over the same-named schedule made by `reclaim schedules add`")
        if reasons:
            return ScheduleChange(item.name, "updated", "; ".join(reasons))
        return ScheduleChange(item.name, "unchanged")

    def _own(self, name: str) -> None:
        now = self.engine.store.now()
        with self.engine.store.engine.begin() as connection:
            known = connection.execute(
                sa.select(config_schedules.c.name).where(config_schedules.c.name == name)
            ).first()
            if known is None:
                connection.execute(
                    sa.insert(config_schedules).values(
                        name=name, config=self.source, installed_at=now
                    )
                )
            else:
                connection.execute(
                    sa.update(config_schedules)
                    .where(config_schedules.c.name == name)
                    .values(config=self.source, installed_at=now)
                )
