"""When to retry a Jira request, and how long to wait: a pure decision, tested without a network.

Jira Cloud answers 429 (and sometimes 503) with ``Retry-After`` in seconds and says which limit
was hit in ``RateLimit-Reason``. Creating an issue is not idempotent, so a create is retried only
when Jira certainly did not act on it: a 429/503 answer, or a connection that never opened.
"""

from __future__ import annotations

__all__ = ["Attempt", "Decision", "RetryPolicy", "parse_retry_after"]

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

Failure = Literal["status", "connect", "sent"]

# Rate limiting (429) and maintenance (503) mean "not processed"; the other 5xx may have been.
_NOT_PROCESSED = frozenset({429, 503})
_TRANSIENT = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Attempt:
    """What happened on one try: an HTTP status, or a transport failure before/after sending."""

    number: int
    failure: Failure
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    repeatable: bool = True


@dataclass(frozen=True)
class Decision:
    retry: bool
    delay: float = 0.0
    ambiguous: bool = False
    throttled: bool = False
    reason: str = ""


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass
class RetryPolicy:
    """Exponential backoff with jitter, bounded; ``Retry-After`` wins when Jira sends it."""

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 300.0
    rng: random.Random = field(default_factory=random.Random)

    def backoff(self, number: int) -> float:
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (number - 1))
        # Half fixed, half random: spreads out clients that failed together.
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def decide(self, attempt: Attempt) -> Decision:
        if attempt.failure == "connect":
            # The request never left, so even a create is safe to send again.
            return self._again(attempt, self.backoff(attempt.number), "connection failed")
        if attempt.failure == "sent":
            if not attempt.repeatable:
                return Decision(False, ambiguous=True, reason="no response to a sent request")
            return self._again(attempt, self.backoff(attempt.number), "no response")
        status = attempt.status or 0
        if status not in _TRANSIENT:
            return Decision(False, reason=f"HTTP {status}")
        if not attempt.repeatable and status not in _NOT_PROCESSED:
            return Decision(False, ambiguous=True, reason=f"HTTP {status} on a create")
        headers = {k.lower(): v for k, v in attempt.headers.items()}
        reason = f"HTTP {status}"
        if "ratelimit-reason" in headers:
            reason += f" ({headers['ratelimit-reason']})"
        waited = parse_retry_after(headers.get("retry-after"))
        if waited is not None and waited > self.max_retry_after:
            return Decision(False, reason=f"{reason}, Retry-After {waited:.0f}s is too long")
        delay = waited if waited is not None else self.backoff(attempt.number)
        # A per-issue write limit says nothing about the global rate, so it does not slow the pacer.
        throttled = status == 429 and headers.get("ratelimit-reason") != "jira-per-issue-on-write"
        decision = self._again(attempt, delay, reason)
        return Decision(decision.retry, decision.delay, throttled=throttled, reason=reason)

    def _again(self, attempt: Attempt, delay: float, reason: str) -> Decision:
        if attempt.number >= self.max_attempts:
            return Decision(False, reason=reason)
        return Decision(True, delay=delay, reason=reason)
