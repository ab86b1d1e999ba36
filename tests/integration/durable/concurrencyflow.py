"""A map step that records how many of its items ran at once in this process.

Imported by ``reclaim runs resume --module concurrencyflow`` (this folder on PYTHONPATH): the
result of the run is the highest number of items seen in flight together.
"""

from __future__ import annotations

import threading
import time

from reclaim.durable import StepContext, Workflow

workflow = Workflow("concurrency-demo", version="1")
_lock = threading.Lock()
_in_flight = 0
# Each item waits until this many are in flight (or half a second passes), so a process that
# allows several at once is seen to run several at once.
_GATHER = 4


@workflow.step()
def keys(ctx: StepContext) -> list[str]:
    return [f"k{i:02d}" for i in range(12)]


@workflow.map_step(over="keys", key=lambda key: key, concurrency=_GATHER)
def each(ctx: StepContext, key: str) -> int:
    global _in_flight
    with _lock:
        _in_flight += 1
        seen = _in_flight
    try:
        # Bounded: with one item at a time nobody else ever arrives.
        deadline = time.monotonic() + 0.5
        while seen < _GATHER and time.monotonic() < deadline:
            time.sleep(0.01)
            with _lock:
                seen = max(seen, _in_flight)
        return seen
    finally:
        with _lock:
            _in_flight -= 1


@workflow.step(depends_on=["each"])
def peak(ctx: StepContext, each: dict[str, int]) -> int:
    return max(each.values())
