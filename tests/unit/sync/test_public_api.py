"""reclaim.sync's public names are frozen: changing them is a deliberate act."""

from __future__ import annotations

import reclaim.sync


def test_public_names_are_frozen() -> None:
    assert sorted(reclaim.sync.__all__) == sorted(
        [
            "FINGERPRINT_LABEL_PREFIX",
            "MANAGED_LABEL",
            "MAX_TICKET_BATCH",
            "BatchResult",
            "TicketBatch",
            "batch_items",
            "distribute_batch",
            "PollResult",
            "Poller",
            "StatusMapping",
            "map_status",
            "DistributeInput",
            "Distributor",
            "TicketItem",
            "TicketLedger",
            "TicketPlan",
            "TicketRow",
            "add_progress_observer",
            "distribute_bulk",
            "distribute_workflow",
            "fingerprint_label",
            "plan_items",
            "recommendation_facts",
            "WebhookReceiver",
            "verify_signature",
            "WriteBackAction",
            "WriteBackReport",
            "WriteBackSettings",
            "plan_write_back",
            "write_back",
        ]
    )
    for name in reclaim.sync.__all__:
        assert hasattr(reclaim.sync, name)
