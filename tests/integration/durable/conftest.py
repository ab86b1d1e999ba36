"""A durable store on a fresh database, for each backend."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from reclaim.durable import Checkpoint, DurableEngine, StepStatus, Store, Workflow
from reclaim.durable.queue import ItemQueue


@pytest.fixture
def store(engine: Engine) -> Store:
    store = Store(engine)
    store.ensure_schema()
    return store


def queued_run(store: Store, wf: Workflow, items: int, owner: str = "owner") -> str:
    """A run whose owner (another process, still alive) queued ``items`` items of ``work``,
    keyed k000, k001, … after its ``keys`` step succeeded."""
    run_id = DurableEngine(store, workflows=[wf]).start(wf)
    claim = store.claim_run(owner, 60, run_id=run_id)
    assert claim is not None
    keys = [f"k{n:03d}" for n in range(items)]
    output = "[" + ",".join(f'"{k}"' for k in keys) + "]"
    store.checkpoint(claim, Checkpoint("keys", "", StepStatus.SUCCEEDED, 1, output=output))
    ItemQueue(store).enqueue(claim, "work", keys)
    return run_id
