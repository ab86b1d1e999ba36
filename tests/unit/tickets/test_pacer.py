from __future__ import annotations

from reclaim.tickets.pacer import Pacer


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_paces_at_the_configured_rate_after_the_burst() -> None:
    t = FakeTime()
    pacer = Pacer(10.0, burst=5, clock=t.clock, sleep=t.sleep)
    for _ in range(25):
        pacer.acquire()
    # 5 from the burst, then 20 at 10/s.
    assert abs(t.now - 2.0) < 1e-6


def test_a_429_pauses_everyone_and_lowers_the_rate_for_good() -> None:
    t = FakeTime()
    pacer = Pacer(100.0, burst=1, clock=t.clock, sleep=t.sleep)
    pacer.acquire()
    pacer.throttled(retry_after=3.0)
    pacer.acquire()
    assert t.now >= 3.0
    assert pacer.rate == 80.0
    start = t.now
    for _ in range(80):
        pacer.acquire()
    assert abs((t.now - start) - 1.0) < 0.02
