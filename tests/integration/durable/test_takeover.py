"""Taking over a run whose map items are in the shared queue: only through the queue.

A run's owner that queued its map items may die while a helper holds some of them. Whoever
takes the run over (``reclaim runs resume``, ``DurableEngine.run``, a worker with or without
``distribute_items``) must leave the items the helper holds to the helper and wait for them,
never run them a second time.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

from reclaim.durable import (
    Checkpoint,
    DurableEngine,
    RunStatus,
    StepContext,
    StepStatus,
    Store,
    Workflow,
)
from reclaim.durable.queue import ItemClaim, ItemQueue

KEYS = [f"k{n}" for n in range(6)]


def _flow(calls: list[str]) -> Workflow:
    wf = Workflow("takeover-items", register=False)

    @wf.step()
    def keys(ctx: StepContext) -> list[str]:
        return list(KEYS)

    @wf.map_step(over="keys", key=lambda k: k, concurrency=2)
    def work(ctx: StepContext, item: str) -> str:
        calls.append(item)
        return item.upper()

    @wf.step(depends_on=("work",))
    def total(ctx: StepContext, work: dict[str, str]) -> str:
        return "".join(work.values())

    return wf


def _dead_owner_with_a_live_helper(
    store: Store, wf: Workflow
) -> tuple[str, ItemQueue, list[ItemClaim]]:
    """The owner checkpointed ``keys``, queued the items and died; a helper holds two items
    (one already finished) with a live lease."""
    run_id = DurableEngine(store, workflows=[wf]).start(wf)
    owner = store.claim_run("dead-owner", 0.01, run_id=run_id)
    assert owner is not None
    store.checkpoint(
        owner,
        Checkpoint("keys", "", StepStatus.SUCCEEDED, 1, output='["k0","k1","k2","k3","k4","k5"]'),
    )
    queue = ItemQueue(store)
    queue.enqueue(owner, "work", KEYS)
    held = queue.claim("helper", 60, limit=3, run_id=run_id)
    assert [c.item_key for c in held] == ["k0", "k1", "k2"]
    queue.save(held[0], Checkpoint("work", "k0", StepStatus.SUCCEEDED, 1, output='"K0"'))
    time.sleep(0.05)  # the owner's lease has run out
    return run_id, queue, held[1:]


def _helper_finishes(queue: ItemQueue, held: list[ItemClaim], calls: list[str]) -> threading.Thread:
    def finish() -> None:
        time.sleep(0.3)
        for claim in held:
            calls.append(claim.item_key)
            output = f'"{claim.item_key.upper()}"'
            queue.save(
                claim, Checkpoint("work", claim.item_key, StepStatus.SUCCEEDED, 1, output=output)
            )

    return threading.Thread(target=finish)


def test_a_takeover_without_distribution_leaves_the_helpers_items_to_it(store: Store) -> None:
    calls: list[str] = []
    wf = _flow(calls)
    run_id, queue, held = _dead_owner_with_a_live_helper(store, wf)
    calls.append("k0")  # what the helper ran before the takeover
    helper = _helper_finishes(queue, held, calls)
    helper.start()
    try:
        # What `reclaim runs resume` builds: no item distribution of its own.
        resumer = DurableEngine(store, workflows=[wf], lease_seconds=5)
        assert resumer.run(run_id) == "K0K1K2K3K4K5"
    finally:
        helper.join()
    assert Counter(calls) == Counter(KEYS), "an item ran twice or never"
    assert resumer.get_run(run_id).status is RunStatus.SUCCEEDED
    assert {s.status for s in resumer.steps(run_id)} == {StepStatus.SUCCEEDED}


def test_a_distributed_takeover_also_waits_for_the_helper(store: Store) -> None:
    calls: list[str] = []
    wf = _flow(calls)
    run_id, queue, held = _dead_owner_with_a_live_helper(store, wf)
    calls.append("k0")
    helper = _helper_finishes(queue, held, calls)
    helper.start()
    try:
        resumer = DurableEngine(store, workflows=[wf], lease_seconds=5, distribute_items=True)
        assert resumer.run(run_id) == "K0K1K2K3K4K5"
    finally:
        helper.join()
    assert Counter(calls) == Counter(KEYS)


def test_sessions_end_a_transaction_left_idle_for_a_lease(store: Store) -> None:
    """A process frozen inside a transaction must not keep its locks past its lease."""
    if store.engine.dialect.name == "sqlite":
        return  # SQLite has no such setting (docs/workers.md: a frozen writer blocks the file)
    DurableEngine(store, lease_seconds=2.5)
    DurableEngine(store, lease_seconds=30)  # the shortest lease used on the engine wins
    with store.engine.connect() as connection:
        shown = connection.exec_driver_sql("SHOW idle_in_transaction_session_timeout").scalar()
    assert shown == "2500ms"
