"""The scheduler inside ``reclaim serve``: fires due cron ticks; workers run what it starts.

It is the durable engine's :class:`~reclaim.durable.Scheduler` on a timer. Exactly-once per
tick comes from the database (each tick's run has a unique dedupe key, and the schedule row
advances conditionally), so any number of ``reclaim serve`` replicas and ``reclaim worker``
processes may run schedulers at once without electing a leader.

Given the schedules of a ``reclaim.yaml`` (a
:class:`~reclaim.service.configured.ConfiguredSchedules`), its first pass installs them; no tick
fires before they are installed, so a schedule the file no longer names never fires again.
"""

from __future__ import annotations

__all__ = ["ScheduleLoop"]

import logging
import threading

from reclaim.durable import DurableEngine, Scheduler, ScheduleTick
from reclaim.service.configured import ConfiguredSchedules, ScheduleChange
from reclaim.service.metrics import ServiceMetrics

log = logging.getLogger(__name__)


class ScheduleLoop:
    """Calls ``Scheduler.tick`` every ``interval`` seconds in a daemon thread until stopped."""

    def __init__(
        self,
        engine: DurableEngine,
        *,
        interval: float = 10.0,
        metrics: ServiceMetrics | None = None,
        configured: ConfiguredSchedules | None = None,
    ) -> None:
        self.scheduler = Scheduler(engine)
        self.interval = interval
        self.metrics = metrics
        self.configured = configured
        self.installed: list[ScheduleChange] | None = None
        """What installing the configured schedules did, once it succeeded."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.fired: list[ScheduleTick] = []

    def tick(self) -> list[ScheduleTick]:
        """One pass: start the runs of every due tick (or find them already started)."""
        if self.configured is not None and self.installed is None:
            try:
                self.installed = self.configured.install()
            except Exception:
                # The database may be down or not migrated yet: try again at the next pass,
                # and fire nothing meanwhile (a schedule the file dropped must not fire).
                log.exception(
                    "scheduler: installing the schedules of %s failed; retrying in %.0fs",
                    self.configured.source,
                    self.interval,
                )
                if self.metrics is not None:
                    self.metrics.schedule_errors.inc()
                return []
        try:
            fired = self.scheduler.tick()
        except Exception:
            # A database hiccup must not end the loop: the tick is still due at the next pass.
            log.exception("scheduler: a pass failed; retrying in %.0fs", self.interval)
            if self.metrics is not None:
                self.metrics.schedule_errors.inc()
            return []
        for item in fired:
            if self.metrics is not None:
                self.metrics.schedule_ticks.labels("true" if item.created else "false").inc()
            if item.created:
                log.info("scheduler: %s @ %s started run %s", item.schedule, item.tick, item.run_id)
        self.fired.extend(fired)
        return fired

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="reclaim-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.tick()
            self._stop.wait(self.interval)
