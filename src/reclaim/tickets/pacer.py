"""Keep requests under Jira's rate limit instead of hammering into 429s.

A token bucket paces requests at ``rate`` per second. A 429 means the real limit is below the
current rate: the pacer drops to a fraction of it and stays there for the rest of its life, so
a steady run sees one 429 and then none. (Creeping back up would find the limit again with a
429 every time.)
"""

from __future__ import annotations

__all__ = ["Pacer"]

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Pacer:
    rate: float
    burst: float = 1.0
    backoff_factor: float = 0.8
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _tokens: float = field(init=False)
    _stamp: float = field(init=False)
    _pause_until: float = field(init=False, default=0.0)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError("rate must be positive")
        self._tokens = self.burst
        self._stamp = self.clock()

    def acquire(self) -> None:
        """Block until one request may be sent."""
        while True:
            with self._lock:
                now = self.clock()
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                wait = self._pause_until - now
                # The tolerance stops float rounding from leaving a token at 0.9999999 forever.
                if wait <= 0 and self._tokens >= 1 - 1e-9:
                    self._tokens = max(0.0, self._tokens - 1)
                    return
                if wait <= 0:
                    wait = (1 - self._tokens) / self.rate
            self.sleep(wait)

    def throttled(self, retry_after: float) -> None:
        """Jira said 429: slow down, and hold everyone until ``retry_after`` has passed."""
        with self._lock:
            self.rate = max(self.rate * self.backoff_factor, 0.1)
            self._pause_until = max(self._pause_until, self.clock() + retry_after)
            self._tokens = 0
