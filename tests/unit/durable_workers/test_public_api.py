"""The public names of the worker and schedule modules are frozen: changing them is a decision."""

from __future__ import annotations

import reclaim.durable.schedule as schedule
import reclaim.durable.worker as worker


def test_worker_api() -> None:
    assert sorted(worker.__all__) == ["Worker", "WorkerStats", "WorkerStopping"]


def test_schedule_api() -> None:
    assert sorted(schedule.__all__) == [
        "CronExpression",
        "Schedule",
        "ScheduleTick",
        "Scheduler",
        "dedupe_key",
        "due_tick",
        "next_tick",
        "schedules",
    ]


def test_every_public_name_exists() -> None:
    for module in (worker, schedule):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
