"""Queued map items are claimed continuously, saved in batches, on few connections."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from sqlalchemy import event
from tests.integration.durable.conftest import queued_run

from reclaim.durable import DurableEngine, StepContext, StepStatus, Store, Workflow
from reclaim.durable.queue import ItemQueue

ITEMS = 40


def _fanout(calls: list[str], on_call: threading.Event | None = None) -> Workflow:
    wf = Workflow("pumped", register=False)

    @wf.step()
    def keys(ctx: StepContext) -> list[str]:
        return [f"k{n:03d}" for n in range(ITEMS)]

    @wf.map_step(over="keys", key=lambda k: k, concurrency=8)
    def work(ctx: StepContext, item: str) -> int:
        calls.append(item)
        if on_call is not None:
            on_call.set()
        time.sleep(0.01)
        return int(item[1:])

    return wf


def test_a_helper_keeps_claiming_until_the_queue_is_empty(store: Store) -> None:
    calls: list[str] = []
    wf = _fanout(calls)
    run_id = queued_run(store, wf, ITEMS)
    helper = DurableEngine(store, workflows=[wf], lease_seconds=10)
    # Four at a time, refilled as they finish: one call drains the queue (it used to take
    # one batch and wait for all of it before the worker asked again).
    assert helper.work_items(limit=4, batch=2) == ITEMS
    assert Counter(calls) == Counter(f"k{n:03d}" for n in range(ITEMS))
    assert ItemQueue(store).progress(run_id, "work") == {StepStatus.SUCCEEDED: ITEMS}


def test_a_stopped_helper_hands_back_the_items_it_did_not_start(store: Store) -> None:
    calls: list[str] = []
    stop = threading.Event()
    wf = _fanout(calls, on_call=stop)  # the worker is asked to stop once its first item runs
    run_id = queued_run(store, wf, ITEMS)
    helper = DurableEngine(store, workflows=[wf], lease_seconds=60)
    # One slot, eight claimed ahead: the seven never started go back to the queue at once
    # instead of waiting a whole lease for another worker.
    assert helper.work_items(limit=1, batch=8, stop=stop) == 8
    assert calls == ["k000"]
    progress = ItemQueue(store).progress(run_id, "work")
    assert progress == {StepStatus.SUCCEEDED: 1, StepStatus.PENDING: ITEMS - 1}, progress


def test_items_in_flight_do_not_hold_a_connection_each(store: Store) -> None:
    calls: list[str] = []
    wf = _fanout(calls)
    engine = store.engine
    lock = threading.Lock()
    state: dict[str, Any] = {"now": 0, "peak": 0}

    def checkout(*_: Any) -> None:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])

    def checkin(*_: Any) -> None:
        with lock:
            state["now"] -= 1

    event.listen(engine, "checkout", checkout)
    event.listen(engine, "checkin", checkin)
    try:
        owner = DurableEngine(store, workflows=[wf], distribute_items=True, lease_seconds=10)
        result = owner.run_workflow(wf)
    finally:
        event.remove(engine, "checkout", checkout)
        event.remove(engine, "checkin", checkin)
    assert result == {f"k{n:03d}": n for n in range(ITEMS)}
    # Eight items at once, but only the pump (claims and saves), the run's heartbeat and the
    # items' heartbeat ever use a connection: items that do not touch the database hold none.
    assert state["peak"] <= 3, state
