"""Fault injection: rate limits with Retry-After, server errors, latency, lost create answers."""

from __future__ import annotations

__all__ = ["FaultPlan", "Faults"]

import asyncio
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass
class FaultPlan:
    """What the simulator does wrong. All off by default.

    ``rate_limit``: requests per second the site accepts (token bucket, one second of burst);
    beyond it a 429 with ``Retry-After`` and ``RateLimit-Reason: jira-burst-based``.
    ``error_rate``: share of requests answered ``error_status`` before doing anything.
    ``latency``: seconds added to every answer.
    ``lose_creates``: the next N creates (single or bulk) happen, then the connection drops
    before the answer is sent; ``lose_rate`` does the same to a share of creates.
    ``lose_writes``: the same for the next N comments and transitions (what write-back sends).
    """

    rate_limit: float | None = None
    error_rate: float = 0.0
    error_status: int = 503
    latency: float = 0.0
    lose_creates: int = 0
    lose_rate: float = 0.0
    lose_writes: int = 0
    seed: int = 0

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> FaultPlan:
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        return cls(**dict(raw))

    def to_mapping(self) -> dict[str, Any]:
        return asdict(self)


class Faults:
    """The live fault state of one simulator: the plan plus its token bucket and counters."""

    def __init__(self, plan: FaultPlan | None = None, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.lock = threading.Lock()
        # latency_peak: the most requests seen waiting out ``latency`` at the same time.
        self.counts = {"requests": 0, "throttled": 0, "errors": 0, "lost": 0, "latency_peak": 0}
        self._waiting = 0
        self.configure(plan or FaultPlan())

    def configure(self, plan: FaultPlan) -> None:
        with self.lock:
            self.plan = plan
            self.rng = random.Random(plan.seed)  # noqa: S311 - reproducible faults, not secrets
            self._tokens = plan.rate_limit or 0.0
            self._stamp = self.clock()
            self._lose_left = plan.lose_creates
            self._lose_writes_left = plan.lose_writes

    async def wait_latency(self) -> None:
        """Wait out the plan's latency without holding the event loop or a lock.

        Latency is the time a real site takes to answer, not work: requests in flight wait it
        out side by side, as they would on Jira.
        """
        latency = self.plan.latency
        if not latency:
            return
        with self.lock:
            self._waiting += 1
            self.counts["latency_peak"] = max(self.counts["latency_peak"], self._waiting)
        try:
            await asyncio.sleep(latency)
        finally:
            with self.lock:
                self._waiting -= 1

    def admit(self) -> float | None:
        """None to serve the request, else the seconds to put in ``Retry-After``."""
        with self.lock:
            self.counts["requests"] += 1
            limit = self.plan.rate_limit
            if not limit:
                return None
            now = self.clock()
            self._tokens = min(limit, self._tokens + (now - self._stamp) * limit)
            self._stamp = now
            if self._tokens >= 1:
                self._tokens -= 1
                return None
            self.counts["throttled"] += 1
            # Jira sends whole seconds; a client that waits them out finds the bucket refilled.
            return float(max(1, math.ceil((1 - self._tokens) / limit)))

    def server_error(self) -> int | None:
        with self.lock:
            if self.plan.error_rate and self.rng.random() < self.plan.error_rate:
                self.counts["errors"] += 1
                return self.plan.error_status
            return None

    def lose_this_create(self) -> bool:
        with self.lock:
            lose = self._lose_left > 0 or (
                self.plan.lose_rate > 0 and self.rng.random() < self.plan.lose_rate
            )
            if self._lose_left > 0:
                self._lose_left -= 1
            if lose:
                self.counts["lost"] += 1
            return lose

    def lose_this_write(self) -> bool:
        with self.lock:
            if self._lose_writes_left <= 0:
                return False
            self._lose_writes_left -= 1
            self.counts["lost"] += 1
            return True
