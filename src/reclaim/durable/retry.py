"""Retry policies as pure decisions: given a failure and the attempt number, retry or stop.

Nothing here sleeps or touches a database; the executor applies the decision. That keeps the
policy testable as a plain function, and lets a resumed run continue its attempt count.
"""

from __future__ import annotations

__all__ = ["RetryDecision", "RetryPolicy"]

import random
from dataclasses import dataclass, field

from reclaim.errors import ConfigError


@dataclass(frozen=True)
class RetryDecision:
    """What to do after a failed attempt: retry after ``delay`` seconds, or give up."""

    retry: bool
    delay: float = 0.0
    reason: str = ""


@dataclass(frozen=True)
class RetryPolicy:
    """How a step retries.

    ``attempts`` counts every try, the first included (1 means never retry). The delay before
    attempt n+1 is ``backoff_base * 2 ** (n - 1)`` capped at ``backoff_max``; with ``jitter`` it
    is drawn uniformly from [delay/2, delay] so that many failing items do not retry in lockstep.
    An exception retries when it is an instance of ``retry_on`` and not of ``permanent``
    (``permanent`` wins: list narrow "this will never work" errors there).
    """

    attempts: int = 3
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    jitter: bool = True
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    permanent: tuple[type[BaseException], ...] = ()
    _rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigError(f"RetryPolicy(attempts={self.attempts}): attempts must be ≥ 1")
        if self.backoff_base < 0 or self.backoff_max < 0:
            raise ConfigError("RetryPolicy: backoff_base and backoff_max must be ≥ 0")

    @classmethod
    def never(cls) -> RetryPolicy:
        """Run once; any failure is final."""
        return cls(attempts=1)

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before ``attempt`` (2 for the first retry), jitter included."""
        exponent = max(attempt - 2, 0)
        delay = min(self.backoff_base * (2.0**exponent), self.backoff_max)
        if self.jitter and delay > 0:
            delay = self._rng.uniform(delay / 2, delay)
        return delay

    def decide(self, error: BaseException, attempt: int) -> RetryDecision:
        """Decide after ``attempt`` (1-based) failed with ``error``."""
        name = type(error).__name__
        if isinstance(error, self.permanent):
            return RetryDecision(False, reason=f"{name} is a permanent error")
        if not isinstance(error, self.retry_on):
            return RetryDecision(False, reason=f"{name} is not retried by this step's policy")
        if attempt >= self.attempts:
            return RetryDecision(False, reason=f"gave up after {attempt} attempt(s)")
        return RetryDecision(True, delay=self.delay_before(attempt + 1))
