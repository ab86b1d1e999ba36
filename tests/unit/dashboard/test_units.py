"""The runs pages count ticket chunks in tickets: the chunk keys they read are the ones the
distribution writes, and the steps they name are the ticket map steps."""

from __future__ import annotations

from reclaim.dashboard import TICKET_CHUNK_STEPS, tickets_in_item
from reclaim.durable import StepKind, registry
from reclaim.pipeline import WEEKLY
from reclaim.sync import TicketItem, batch_items, distribute_workflow


def _items(n: int) -> list[TicketItem]:
    return [
        TicketItem(
            fingerprint=f"{k:064x}",
            recommendation_id=k,
            project="OPS",
            issue_type="Task",
            summary=f"ticket {k}",
            description="",
            labels=[],
            components=[],
            assignee=None,
            priority=None,
        )
        for k in range(n)
    ]


def test_the_size_read_from_each_chunk_key_is_the_chunk_s_size() -> None:
    for size in (1, 7, 50):
        batches = batch_items(_items(123), size)
        for workflow in (WEEKLY.name, distribute_workflow.name):
            read = [tickets_in_item(workflow, "distribute", batch.key) for batch in batches]
            assert read == [len(batch.items) for batch in batches]
            assert sum(n or 0 for n in read) == 123


def test_only_the_ticket_steps_have_chunks() -> None:
    key = batch_items(_items(5), 5)[0].key
    assert tickets_in_item(WEEKLY.name, "collect", key) is None
    assert tickets_in_item("someone.else", "distribute", key) is None
    # A run from before chunking: one ticket per item, keyed by its fingerprint.
    assert tickets_in_item(WEEKLY.name, "distribute", "ab" * 32) == 1


def test_the_named_steps_are_map_steps_of_those_workflows() -> None:
    for workflow, step in TICKET_CHUNK_STEPS:
        specs = {spec.name: spec for spec in registry.get(workflow).order()}
        assert specs[step].kind is StepKind.MAP
