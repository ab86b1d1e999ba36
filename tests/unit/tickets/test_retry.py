from __future__ import annotations

import random
from datetime import UTC, datetime

from reclaim.tickets.retry import Attempt, RetryPolicy, parse_retry_after


def policy() -> RetryPolicy:
    return RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=8.0, rng=random.Random(1))


def test_429_waits_exactly_what_retry_after_says_and_slows_the_pacer() -> None:
    decision = policy().decide(
        Attempt(1, "status", 429, {"Retry-After": "7", "RateLimit-Reason": "jira-burst-based"})
    )
    assert decision.retry
    assert decision.delay == 7.0
    assert decision.throttled
    assert "jira-burst-based" in decision.reason


def test_per_issue_write_limit_does_not_slow_everyone() -> None:
    decision = policy().decide(
        Attempt(
            1, "status", 429, {"Retry-After": "1", "RateLimit-Reason": "jira-per-issue-on-write"}
        )
    )
    assert decision.retry
    assert not decision.throttled


def test_a_create_is_retried_only_when_jira_certainly_did_not_act() -> None:
    p = policy()
    assert p.decide(Attempt(1, "status", 429, {}, repeatable=False)).retry
    assert p.decide(Attempt(1, "status", 503, {}, repeatable=False)).retry
    assert p.decide(Attempt(1, "connect", repeatable=False)).retry
    for attempt in (
        Attempt(1, "status", 500, {}, repeatable=False),
        Attempt(1, "status", 502, {}, repeatable=False),
        Attempt(1, "sent", repeatable=False),
    ):
        decision = p.decide(attempt)
        assert not decision.retry
        assert decision.ambiguous


def test_reads_are_retried_after_a_lost_response_and_5xx() -> None:
    p = policy()
    assert p.decide(Attempt(1, "sent")).retry
    assert p.decide(Attempt(1, "status", 502, {})).retry


def test_permanent_statuses_are_not_retried() -> None:
    for status in (400, 401, 403, 404, 409, 422):
        assert not policy().decide(Attempt(1, "status", status, {})).retry


def test_gives_up_after_max_attempts() -> None:
    p = policy()
    assert p.decide(Attempt(3, "status", 503, {})).retry
    assert not p.decide(Attempt(4, "status", 503, {})).retry


def test_backoff_grows_and_is_capped() -> None:
    p = policy()
    delays = [p.backoff(n) for n in range(1, 8)]
    assert 0.5 <= delays[0] <= 1.0
    assert 2.0 <= delays[2] <= 4.0
    assert all(d <= 8.0 for d in delays)


def test_an_absurd_retry_after_is_not_waited_out() -> None:
    decision = policy().decide(Attempt(1, "status", 429, {"Retry-After": "86400"}))
    assert not decision.retry


def test_retry_after_as_an_http_date() -> None:
    now = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Wed, 01 May 2024 10:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("garbage") is None
    assert parse_retry_after(None) is None
