"""Map items drained by several workers through the item queue (distributed mode)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from reclaim.durable import (
    Checkpoint,
    DurableEngine,
    LeaseLost,
    RunStatus,
    StepContext,
    StepFailed,
    StepStatus,
    Store,
    Workflow,
)
from reclaim.durable.queue import ItemQueue
from reclaim.durable.schema import steps

ITEMS = 40


def _fanout(name: str, calls: list[tuple[str, str]], *, fail: str | None = None) -> Workflow:
    wf = Workflow(name, register=False)

    @wf.step()
    def keys(ctx: StepContext) -> list[str]:
        return [f"k{n:03d}" for n in range(ITEMS)]

    @wf.map_step(over="keys", key=lambda k: k, concurrency=2)
    def work(ctx: StepContext, item: str) -> int:
        calls.append((threading.current_thread().name, item))
        if item == fail:
            raise ValueError(f"cannot process {item}")
        time.sleep(0.002)
        return int(item[1:])

    @wf.step(depends_on=("work",))
    def total(ctx: StepContext, work: dict[str, int]) -> int:
        return sum(work.values())

    return wf


def _helpers(store: Store, wf: Workflow, done: threading.Event, n: int) -> list[threading.Thread]:
    def loop() -> None:
        helper = DurableEngine(store, workflows=[wf], lease_seconds=5)
        while not done.is_set():
            if helper.work_items(limit=2) == 0:
                time.sleep(0.01)

    return [threading.Thread(target=loop, name=f"helper-{i}") for i in range(n)]


def test_helpers_share_the_items_and_each_runs_once(store: Store) -> None:
    calls: list[tuple[str, str]] = []
    wf = _fanout("shared", calls)
    owner = DurableEngine(store, workflows=[wf], distribute_items=True, lease_seconds=5)
    run_id = owner.start(wf)
    done = threading.Event()
    helpers = _helpers(store, wf, done, 2)
    for thread in helpers:
        thread.start()
    try:
        assert owner.run(run_id) == sum(range(ITEMS))
    finally:
        done.set()
        for thread in helpers:
            thread.join()
    per_item = Counter(item for _, item in calls)
    assert set(per_item) == {f"k{n:03d}" for n in range(ITEMS)}
    assert set(per_item.values()) == {1}
    items = [s for s in owner.steps(run_id) if s.item_key]
    assert len(items) == ITEMS
    assert {s.status for s in items} == {StepStatus.SUCCEEDED}
    assert owner.get_run(run_id).status is RunStatus.SUCCEEDED


def test_an_item_failed_by_a_helper_fails_the_run(store: Store) -> None:
    calls: list[tuple[str, str]] = []
    wf = _fanout("helper-fails", calls, fail="k007")
    owner = DurableEngine(store, workflows=[wf], distribute_items=True, lease_seconds=5)
    run_id = owner.start(wf)
    done = threading.Event()
    helpers = _helpers(store, wf, done, 1)
    for thread in helpers:
        thread.start()
    try:
        with pytest.raises(StepFailed, match="k007"):
            owner.run(run_id)
    finally:
        done.set()
        for thread in helpers:
            thread.join()
    assert owner.get_run(run_id).status is RunStatus.FAILED


def test_a_resumed_distributed_map_runs_only_unfinished_items(store: Store) -> None:
    calls: list[tuple[str, str]] = []
    wf = _fanout("resumed", calls, fail="k030")
    owner = DurableEngine(store, workflows=[wf], distribute_items=True, lease_seconds=5)
    run_id = owner.start(wf)
    with pytest.raises(StepFailed):
        owner.run(run_id)
    assert Counter(item for _, item in calls)["k030"] == 1
    fixed = _fanout("resumed", calls)
    again = DurableEngine(store, workflows=[fixed], distribute_items=True, lease_seconds=5)
    assert again.resume(run_id) == sum(range(ITEMS))
    # Finished items never ran again; only the failed one ran a second time.
    total = Counter(item for _, item in calls)
    assert total.pop("k030") == 2
    assert set(total.values()) == {1}
    assert len(total) == ITEMS - 1


def test_an_item_whose_lease_expired_belongs_to_its_new_owner(store: Store) -> None:
    calls: list[tuple[str, str]] = []
    wf = _fanout("stale-item", calls)
    engine = DurableEngine(store, workflows=[wf], lease_seconds=5)
    run_id = engine.start(wf)
    claim = store.claim_run("owner", 60, run_id=run_id)
    assert claim is not None
    queue = ItemQueue(store)
    queue.enqueue(claim, "work", ["a", "b"])
    (stale,) = queue.claim("slow-helper", -1.0, run_id=run_id, limit=1)  # already expired
    (fresh,) = queue.claim("fast-helper", 60, run_id=run_id, step="work", limit=1)
    assert (fresh.item_key, fresh.fencing_token) == (stale.item_key, stale.fencing_token + 1)
    done: dict[str, Any] = {"output": "1", "attempts": 1}
    with pytest.raises(LeaseLost, match="slow-helper"):
        queue.save(stale, Checkpoint("work", stale.item_key, StepStatus.SUCCEEDED, **done))
    queue.save(fresh, Checkpoint("work", fresh.item_key, StepStatus.SUCCEEDED, **done))
    assert queue.progress(run_id, "work") == {StepStatus.SUCCEEDED: 1, StepStatus.PENDING: 1}
    store.cancel(run_id)
    assert queue.claim("late", 60, run_id=run_id) == []  # a cancelled run's items are left


def test_an_item_that_kills_every_worker_fails_after_max_attempts(store: Store) -> None:
    calls: list[tuple[str, str]] = []
    wf = _fanout("poison", calls)
    wf.max_attempts = 3
    engine = DurableEngine(store, workflows=[wf], lease_seconds=5)
    run_id = engine.start(wf)
    claim = store.claim_run("owner", 60, run_id=run_id)
    assert claim is not None
    queue = ItemQueue(store)
    queue.enqueue(claim, "work", ["bad"])
    for attempt in range(3):  # three workers take it and die (their leases run out at once)
        (taken,) = queue.claim(f"doomed-{attempt}", -1.0, run_id=run_id)
        assert taken.fencing_token == attempt + 1
    assert queue.claim("fourth", 60, run_id=run_id) == []
    assert queue.progress(run_id, "work") == {StepStatus.FAILED: 1}
    failure = queue.failure(run_id, "work")
    assert failure is not None
    assert "claimed 3 time(s)" in failure


def test_the_items_heartbeat_does_not_wait_for_an_item_being_saved(store: Store) -> None:
    # A settle saving some of a worker's items holds their row locks until it commits. The
    # items' heartbeat used to wait for them, locking the worker's rows in another order than
    # the settle: PostgreSQL then failed one of the two as a deadlock (seen in bench/ with four
    # workers: a settle failed, its run was interrupted and its items waited out their leases).
    if store.engine.dialect.name == "sqlite":
        pytest.skip("row locks are PostgreSQL's; SQLite has one writer")
    calls: list[tuple[str, str]] = []
    wf = _fanout("beat-beside-save", calls)
    run_id = DurableEngine(store, workflows=[wf]).start(wf)
    claim = store.claim_run("owner", 60, run_id=run_id)
    assert claim is not None
    queue = ItemQueue(store)
    queue.enqueue(claim, "work", ["a", "b", "c"])
    held = queue.claim("helper", 60, run_id=run_id, limit=3)
    assert [c.item_key for c in held] == ["a", "b", "c"]
    beaten: list[int] = []
    with store.engine.begin() as saving:
        # What the settle's save holds while its transaction is open.
        saving.execute(
            sa.update(steps)
            .where(steps.c.run_id == run_id, steps.c.item_key == "b")
            .values(output="1")
        )
        beat = threading.Thread(target=lambda: beaten.append(queue.heartbeat("helper", 60)))
        beat.start()
        beat.join(timeout=30)
        waited = beat.is_alive()
    beat.join()
    assert not waited, "the heartbeat waited for the row being saved"
    assert beaten == [2]


def test_a_batch_save_is_fenced_per_item_and_keeps_every_field(store: Store) -> None:
    calls: list[tuple[str, str]] = []
    wf = _fanout("batch-save", calls)
    run_id = DurableEngine(store, workflows=[wf]).start(wf)
    claim = store.claim_run("owner", 60, run_id=run_id)
    assert claim is not None
    queue = ItemQueue(store)
    queue.enqueue(claim, "work", ["a", "b", "c"])
    stale = queue.claim("slow-helper", -1.0, run_id=run_id, limit=3)  # leases already over
    (taken,) = queue.claim("fast-helper", 60, run_id=run_id, limit=1)
    assert taken.item_key == "a"
    started = datetime(2026, 12, 7, 9, 23, 45, 137092, tzinfo=UTC)
    finished = datetime(2026, 12, 7, 9, 23, 46, 1, tzinfo=UTC)
    checkpoints = [
        (
            item,
            Checkpoint(
                "work",
                item.item_key,
                StepStatus.SUCCEEDED,
                2,
                output=f'"{item.item_key}\\u00e9"',
                events='[{"kind": "now"}]',
                started_at=started,
                finished_at=finished,
            ),
        )
        for item in stale
    ]
    settled = queue.settle("slow-helper", 60, checkpoints)
    assert [lost.item_key for lost in settled.lost] == ["a"]
    rows = {s.item_key: s for s in store.load_steps(run_id) if s.item_key}
    assert rows["a"].status is StepStatus.RUNNING  # the fast helper's now
    for key in ("b", "c"):
        row = rows[key]
        assert (row.status, row.attempts, row.output) == (
            StepStatus.SUCCEEDED,
            2,
            f'"{key}\\u00e9"',
        )
        assert (row.events, row.started_at, row.finished_at) == (
            '[{"kind": "now"}]',
            started,
            finished,
        )
