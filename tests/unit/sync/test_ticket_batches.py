"""How the ticket list is cut into map items: stable keys, every item once, bounded size."""

from __future__ import annotations

import pytest

from reclaim.errors import ConfigError
from reclaim.sync import MAX_TICKET_BATCH, TicketItem, batch_items


def item(n: int) -> TicketItem:
    return TicketItem(
        fingerprint=f"{n:016x}",
        recommendation_id=n,
        project="OPS",
        issue_type="Task",
        summary=f"s{n}",
        description="d",
        labels=[],
        components=[],
        assignee=None,
        priority=None,
    )


@pytest.mark.parametrize(("count", "size"), [(0, 50), (1, 50), (50, 50), (51, 50), (7, 3), (5, 1)])
def test_every_item_once_in_order_in_bounded_chunks(count: int, size: int) -> None:
    items = [item(n) for n in range(count)]
    batches = batch_items(items, size)
    assert [i for b in batches for i in b.items] == items
    assert all(1 <= len(b.items) <= size for b in batches)
    assert len({b.key for b in batches}) == len(batches)
    # The same list gives the same keys (a resumed run re-derives nothing, but the keys of a
    # checkpointed list must not depend on anything but the list).
    assert [b.key for b in batch_items(items, size)] == [b.key for b in batches]


@pytest.mark.parametrize("size", [0, MAX_TICKET_BATCH + 1])
def test_a_chunk_size_outside_jiras_bulk_limit_is_refused(size: int) -> None:
    with pytest.raises(ConfigError, match="ticket batch"):
        batch_items([item(1)], size)
