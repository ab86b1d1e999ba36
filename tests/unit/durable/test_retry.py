"""Retry policies are pure decisions."""

from __future__ import annotations

import random

import pytest

from reclaim.durable import RetryPolicy
from reclaim.errors import ConfigError


class Permanent(ValueError):
    pass


def test_retries_until_attempts_are_used_up() -> None:
    policy = RetryPolicy(attempts=3, backoff_base=1.0, jitter=False)
    assert policy.decide(RuntimeError(), 1).retry
    assert policy.decide(RuntimeError(), 2).retry
    final = policy.decide(RuntimeError(), 3)
    assert not final.retry
    assert "3 attempt" in final.reason


def test_backoff_doubles_and_is_capped() -> None:
    policy = RetryPolicy(attempts=10, backoff_base=0.5, backoff_max=3.0, jitter=False)
    delays = [policy.decide(RuntimeError(), n).delay for n in range(1, 7)]
    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


def test_jitter_stays_within_half_to_full_delay() -> None:
    policy = RetryPolicy(attempts=5, backoff_base=4.0, jitter=True, _rng=random.Random(7))
    for _ in range(200):
        delay = policy.decide(RuntimeError(), 2).delay  # nominal 8.0
        assert 4.0 <= delay <= 8.0


def test_permanent_errors_win_over_retry_on() -> None:
    policy = RetryPolicy(attempts=5, retry_on=(ValueError,), permanent=(Permanent,))
    assert policy.decide(ValueError("flaky"), 1).retry
    decision = policy.decide(Permanent("bad input"), 1)
    assert not decision.retry
    assert "permanent" in decision.reason


def test_errors_outside_retry_on_do_not_retry() -> None:
    policy = RetryPolicy(attempts=5, retry_on=(TimeoutError,))
    decision = policy.decide(KeyError("x"), 1)
    assert not decision.retry
    assert "KeyError" in decision.reason


def test_never_runs_once() -> None:
    assert not RetryPolicy.never().decide(RuntimeError(), 1).retry


@pytest.mark.parametrize("kwargs", [{"attempts": 0}, {"backoff_base": -1.0}])
def test_invalid_policies_are_config_errors(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
