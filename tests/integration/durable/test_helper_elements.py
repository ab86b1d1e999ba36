"""A helper decodes only the elements of the map items it runs, found by the position their
owner queued them with; a position that no longer holds the item's element falls back to the
whole list, checked as the owner checks it."""

from __future__ import annotations

import threading
from typing import ClassVar

import pytest
import sqlalchemy as sa
from pydantic import BaseModel, model_validator

from reclaim.durable import (
    Checkpoint,
    DefinitionMismatch,
    DurableEngine,
    StepContext,
    StepStatus,
    Store,
    Workflow,
)
from reclaim.durable.queue import ItemQueue
from reclaim.durable.schema import steps

ELEMENTS = 50


class Chunk(BaseModel):
    """An element that counts how many times it was decoded."""

    key: str
    value: int

    decoded: ClassVar[int] = 0
    lock: ClassVar[threading.Lock] = threading.Lock()

    @model_validator(mode="after")
    def _count(self) -> Chunk:
        with Chunk.lock:
            Chunk.decoded += 1
        return self


def _chunks(order: range) -> list[Chunk]:
    return [Chunk(key=f"c{n:03d}", value=n * 10) for n in order]


def _workflow(name: str, order: range, key_prefix: str = "") -> Workflow:
    wf = Workflow(name, register=False)

    @wf.step()
    def chunks(ctx: StepContext) -> list[Chunk]:
        return _chunks(order)

    @wf.map_step(over="chunks", key=lambda c: key_prefix + c.key, concurrency=2)
    def work(ctx: StepContext, chunk: Chunk) -> int:
        return chunk.value

    @wf.step(depends_on=("work",))
    def total(ctx: StepContext, work: dict[str, int]) -> int:
        return sum(work.values())

    return wf


def _queued(store: Store, wf: Workflow, queued: dict[str, int]) -> str:
    """A run whose owner (another process, alive) checkpointed ``chunks`` and queued the
    items ``queued`` (key → element index)."""
    run_id = DurableEngine(store, workflows=[wf]).start(wf)
    claim = store.claim_run("owner-elsewhere", 60, run_id=run_id)
    assert claim is not None
    output = wf["chunks"].encode(_chunks(range(ELEMENTS)))
    store.checkpoint(claim, Checkpoint("chunks", "", StepStatus.SUCCEEDED, 1, output=output))
    ItemQueue(store).enqueue(claim, "work", list(queued), list(queued.values()))
    return run_id


def _outputs(store: Store, run_id: str) -> dict[str, str | None]:
    return {s.item_key: s.output for s in store.load_steps(run_id) if s.item_key}


def test_a_helper_decodes_only_the_elements_of_its_items(store: Store) -> None:
    wf = _workflow("three-of-fifty", range(ELEMENTS))
    run_id = _queued(store, wf, {"c007": 7, "c023": 23, "c041": 41})
    helper = DurableEngine(store, workflows=[wf], lease_seconds=10)
    Chunk.decoded = 0
    assert helper.work_items() == 3
    # It decoded the whole list of 50 before, for 3 items.
    assert Chunk.decoded == 3
    assert _outputs(store, run_id) == {"c007": "70", "c023": "230", "c041": "410"}


def test_a_position_that_holds_another_element_falls_back_to_the_whole_list(
    store: Store,
) -> None:
    wf = _workflow("shifted", range(ELEMENTS))
    # Positions off by one, and one out of range: each item still gets its own element.
    run_id = _queued(store, wf, {"c007": 8, "c023": 22, "c049": 50})
    helper = DurableEngine(store, workflows=[wf], lease_seconds=10)
    assert helper.work_items() == 3
    assert _outputs(store, run_id) == {"c007": "70", "c023": "230", "c049": "490"}


def test_items_whose_keys_the_code_no_longer_gives_are_still_refused(store: Store) -> None:
    wf = _workflow("renamed", range(ELEMENTS))
    run_id = _queued(store, wf, {"c007": 7})
    # Same stored elements, another key function: the element at position 7 now gives
    # "x-c007", so the helper decodes the whole list, whose keys no longer match the stored
    # items, and refuses the run as before.
    changed = _workflow("renamed", range(ELEMENTS), key_prefix="x-")
    helper = DurableEngine(store, workflows=[changed], lease_seconds=10)
    with pytest.raises(DefinitionMismatch):
        helper.work_items()
    assert ItemQueue(store).progress(run_id, "work") == {StepStatus.PENDING: 1}


def test_the_owner_queues_each_item_with_its_position(store: Store) -> None:
    # Elements in reverse key order, so a position is not the key's rank.
    wf = _workflow("positions", range(ELEMENTS - 1, -1, -1))
    owner = DurableEngine(store, workflows=[wf], distribute_items=True, lease_seconds=10)
    run_id = owner.start(wf)
    assert owner.run(run_id) == sum(n * 10 for n in range(ELEMENTS))
    with store.engine.connect() as connection:
        rows = connection.execute(
            sa.select(steps.c.item_key, steps.c.element_index).where(
                steps.c.run_id == run_id, steps.c.step == "work"
            )
        ).all()
    positions = {key: index for key, index in rows if key}
    assert positions == {f"c{n:03d}": ELEMENTS - 1 - n for n in range(ELEMENTS)}
