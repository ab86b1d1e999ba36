"""Which tick of a cron schedule is due: pure functions, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reclaim.durable.schedule import CronExpression, Schedule, dedupe_key, due_tick, next_tick
from reclaim.errors import ConfigError

HOURLY = CronExpression("0 * * * *")


def at(hour: int, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(2026, 1, 1, hour, minute, second, micro, tzinfo=UTC)


def test_nothing_is_due_before_the_first_tick() -> None:
    assert due_tick(HOURLY, after=at(10, 7), now=at(10, 59, 59)) is None


def test_a_tick_exactly_now_is_due() -> None:
    assert due_tick(HOURLY, after=at(10, 7), now=at(11)) == at(11)


def test_missed_ticks_collapse_into_the_latest_one() -> None:
    assert due_tick(HOURLY, after=at(10), now=at(15, 30)) == at(15)


def test_the_tick_already_taken_is_not_due_again() -> None:
    assert due_tick(HOURLY, after=at(15), now=at(15, 59, 59, 999_999)) is None
    assert due_tick(HOURLY, after=at(15), now=at(16)) == at(16)


def test_now_before_after_is_nothing() -> None:
    assert due_tick(HOURLY, after=at(12), now=at(11)) is None


def test_next_tick_is_strictly_after() -> None:
    assert next_tick(HOURLY, at(11)) == at(12)
    assert next_tick(HOURLY, at(11, 0, 0, 1)) == at(12)


def test_time_zone_follows_daylight_saving() -> None:
    paris = CronExpression("0 6 * * *", timezone="Europe/Paris")
    winter = next_tick(paris, datetime(2026, 1, 10, tzinfo=UTC))
    summer = next_tick(paris, datetime(2026, 7, 10, tzinfo=UTC))
    assert (winter.hour, summer.hour) == (5, 4)


@pytest.mark.parametrize(
    "expression", ["", "* * * *", "61 * * * *", "*/10 * * * * *", "every monday"]
)
def test_bad_expressions_are_config_errors(expression: str) -> None:
    with pytest.raises(ConfigError, match="invalid cron expression"):
        CronExpression(expression)


def test_unknown_time_zone_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Olympus'"):
        CronExpression("0 * * * *", timezone="Mars/Olympus")


def test_a_schedule_that_never_fires_has_no_due_tick() -> None:
    never = CronExpression("0 0 30 2 *")
    assert due_tick(never, after=at(1), now=at(1) + timedelta(days=800)) is None


def test_schedule_input_must_be_json() -> None:
    with pytest.raises(ConfigError, match="not JSON"):
        Schedule(name="weekly", cron=HOURLY, workflow="w", input={"when": object()})


def test_dedupe_key_names_schedule_and_tick_in_utc() -> None:
    paris_tick = datetime(2026, 1, 1, 7, tzinfo=CronExpression("0 7 * * *", "Europe/Paris").zone)
    assert dedupe_key("weekly", paris_tick) == "schedule:weekly@2026-01-01T06:00:00Z"
