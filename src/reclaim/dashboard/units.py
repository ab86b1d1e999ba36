"""What a map item of a run stands for, counted in the unit people think in.

The ticket steps of the weekly loop and of the distribute workflow checkpoint one map item per
chunk of up to 50 tickets (one Jira bulk create each, ``reclaim.sync.batch_items``): "4 items"
would read as four tickets. The runs pages and the API count those chunks as chunks and show
the tickets in them beside: "4 chunks · 200 tickets".
"""

from __future__ import annotations

__all__ = ["TICKET_CHUNK_STEPS", "tickets_in_item"]

from reclaim.pipeline import WEEKLY
from reclaim.sync import distribute_workflow

# (workflow, map step) whose items are chunks of tickets; a test checks each is a map step.
TICKET_CHUNK_STEPS: frozenset[tuple[str, str]] = frozenset(
    {(WEEKLY.name, "distribute"), (distribute_workflow.name, "distribute")}
)


def tickets_in_item(workflow: str, step: str, item_key: str) -> int | None:
    """How many tickets the map item ``item_key`` carries, or None if it is not a chunk.

    A chunk's key is ``<first fingerprint>+<tickets in the chunk>`` (``batch_items``); a run
    from before chunking keyed each item by its ticket's fingerprint alone: one ticket.
    """
    if (workflow, step) not in TICKET_CHUNK_STEPS or not item_key:
        return None
    _, plus, count = item_key.rpartition("+")
    return int(count) if plus and count.isdigit() else 1
