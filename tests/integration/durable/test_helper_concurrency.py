"""A map step's declared ``concurrency`` bounds the items each process runs at once: the run's
owner and every helper alike, unless the process was given its own ``item_concurrency``."""

from __future__ import annotations

import threading
import time

from tests.integration.durable.conftest import queued_run

from reclaim.durable import DurableEngine, StepContext, StepStatus, Store, Workflow
from reclaim.durable.queue import ItemQueue, QueuedStep
from reclaim.durable.worker import Worker

ITEMS = 12
DECLARED = 2


class _InFlight:
    """Counts the items running at once in this process, and the most seen together."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def enter(self) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def leave(self) -> None:
        with self.lock:
            self.now -= 1


def _fanout(name: str, in_flight: _InFlight) -> Workflow:
    wf = Workflow(name, register=False)

    @wf.step()
    def keys(ctx: StepContext) -> list[str]:
        return [f"k{n:03d}" for n in range(ITEMS)]

    @wf.map_step(over="keys", key=lambda k: k, concurrency=DECLARED)
    def work(ctx: StepContext, item: str) -> int:
        in_flight.enter()
        try:
            # Each item waits a little for company, so a process that allows more than the
            # declared concurrency is seen running more at once (bounded: 0.1 s per item).
            deadline = time.monotonic() + 0.1
            while time.monotonic() < deadline:
                with in_flight.lock:
                    if in_flight.now > DECLARED + 1:
                        break
                time.sleep(0.005)
            return int(item[1:])
        finally:
            in_flight.leave()

    @wf.step(depends_on=("work",))
    def total(ctx: StepContext, work: dict[str, int]) -> int:
        return sum(work.values())

    return wf


def test_a_helper_without_a_setting_runs_the_steps_declared_concurrency(store: Store) -> None:
    in_flight = _InFlight()
    wf = _fanout("helped", in_flight)
    run_id = queued_run(store, wf, ITEMS, owner="owner-elsewhere")
    helper = DurableEngine(store, workflows=[wf], lease_seconds=10)
    assert helper.work_items() == ITEMS
    # It used to run 8 at once (a fixed default) whatever the step declared.
    assert in_flight.peak == DECLARED, in_flight.peak
    assert ItemQueue(store).progress(run_id, "work") == {StepStatus.SUCCEEDED: ITEMS}


def test_an_explicit_item_concurrency_still_wins(store: Store) -> None:
    in_flight = _InFlight()
    wf = _fanout("helped-wider", in_flight)
    queued_run(store, wf, ITEMS, owner="owner-elsewhere")
    helper = DurableEngine(store, workflows=[wf], lease_seconds=10, item_concurrency=DECLARED + 2)
    assert helper.work_items() == ITEMS
    assert in_flight.peak == DECLARED + 2, in_flight.peak


def test_slots_of_one_process_share_the_bound(store: Store) -> None:
    # Two slots of one worker helping at once: the second finds the step already helped here
    # and leaves it, so the process still runs at most the declared concurrency.
    in_flight = _InFlight()
    wf = _fanout("helped-twice", in_flight)
    run_id = queued_run(store, wf, ITEMS, owner="owner-elsewhere")
    helper = DurableEngine(store, workflows=[wf], lease_seconds=10)
    taken: list[int] = []
    slots = [threading.Thread(target=lambda: taken.append(helper.work_items())) for _ in range(2)]
    for slot in slots:
        slot.start()
    for slot in slots:
        slot.join()
    assert sum(taken) == ITEMS
    assert in_flight.peak <= DECLARED, in_flight.peak
    assert ItemQueue(store).progress(run_id, "work") == {StepStatus.SUCCEEDED: ITEMS}


def test_a_process_does_not_help_the_run_it_drives(store: Store) -> None:
    # The owner already runs the declared concurrency of its step; a slot of the same process
    # helping it as well would double that.
    in_flight = _InFlight()
    wf = _fanout("owned-here", in_flight)
    engine = DurableEngine(store, workflows=[wf], distribute_items=True, lease_seconds=10)
    run_id = engine.start(wf)
    done = threading.Event()
    helped: list[int] = []

    def idle_slot() -> None:
        while not done.is_set():
            helped.append(engine.work_items())
            time.sleep(0.005)

    slot = threading.Thread(target=idle_slot)
    slot.start()
    try:
        assert engine.run(run_id) == sum(range(ITEMS))
    finally:
        done.set()
        slot.join()
    assert sum(helped) == 0
    assert in_flight.peak == DECLARED, in_flight.peak


def test_a_worker_with_several_slots_helps_within_the_declared_concurrency(
    store: Store,
) -> None:
    # The default path of `reclaim worker`: no item concurrency given, three slots idle.
    in_flight = _InFlight()
    wf = _fanout("worker-helps", in_flight)
    run_id = queued_run(store, wf, ITEMS, owner="owner-elsewhere")
    engine = DurableEngine(store, workflows=[wf], distribute_items=True, lease_seconds=10)
    worker = Worker(engine, concurrency=3, poll_interval=0.02, schedules=False, workflows=[wf.name])
    thread = threading.Thread(target=worker.run)
    thread.start()
    queue = ItemQueue(store)
    try:
        deadline = time.monotonic() + 60
        while queue.progress(run_id, "work") != {StepStatus.SUCCEEDED: ITEMS}:
            assert time.monotonic() < deadline, queue.progress(run_id, "work")
            time.sleep(0.02)
    finally:
        worker.stop()
        thread.join()
    assert worker.stats.items == ITEMS
    assert in_flight.peak == DECLARED, in_flight.peak


def test_a_helper_looks_for_a_step_past_its_own_runs_and_the_steps_it_skips(
    store: Store,
) -> None:
    wf = _fanout("looked-at", _InFlight())
    first = queued_run(store, wf, ITEMS, owner="owner-elsewhere")
    time.sleep(0.01)  # the older run comes first: SQLite's clock counts milliseconds
    second = queued_run(store, wf, ITEMS, owner="owner-elsewhere")
    queue = ItemQueue(store)
    assert queue.next_step("helper", workflows=[]) is None
    assert queue.next_step("helper", workflows=["another"]) is None
    found = queue.next_step("helper", workflows=[wf.name])
    assert found is not None
    assert (found.run_id, found.step, found.workflow) == (first, "work", wf.name)
    skipping_step = queue.next_step("helper", workflows=[wf.name], skip_steps=[(first, "work")])
    skipping_run = queue.next_step("helper", workflows=[wf.name], skip_runs=[first])
    assert [skipping_step, skipping_run] == [QueuedStep(second, "work", wf.name)] * 2
    # The owner of both runs is left nothing to help with: it runs their items itself.
    assert queue.next_step("owner-elsewhere", workflows=[wf.name]) is None
    assert queue.next_step("helper", workflows=[wf.name], skip_runs=[first, second]) is None
    # Items all claimed (held under a live lease) leave nothing to look at either.
    queue.claim("other-helper", 60, run_id=second, limit=ITEMS)
    assert queue.next_step("helper", workflows=[wf.name], skip_runs=[first]) is None
