"""Sync between recommendations and Jira: outbound exactly once per fingerprint.

:class:`Distributor` creates tickets with the intent → create → record protocol and reconciles
by fingerprint label; :data:`distribute_workflow` runs it as a durable map step, one item per
chunk of up to 50 tickets (one bulk create); :class:`Poller` and :class:`WebhookReceiver`
bring Jira's changes back; :func:`write_back` writes reclaim's lifecycle changes and savings
back onto the tickets. See docs/jira.md, "How exactly-once works" and "Write-back".
"""

from __future__ import annotations

from reclaim.sync.distribution import (
    MAX_TICKET_BATCH,
    BatchResult,
    DistributeInput,
    TicketBatch,
    TicketItem,
    batch_items,
    distribute_batch,
    distribute_bulk,
    distribute_workflow,
    plan_items,
    recommendation_facts,
)
from reclaim.sync.inbound import Poller, PollResult, StatusMapping, map_status
from reclaim.sync.ledger import TicketLedger, TicketRow
from reclaim.sync.outbound import (
    FINGERPRINT_LABEL_PREFIX,
    MANAGED_LABEL,
    Distributor,
    TicketPlan,
    add_progress_observer,
    fingerprint_label,
)
from reclaim.sync.webhooks import WebhookReceiver, verify_signature
from reclaim.sync.writeback import (
    WriteBackAction,
    WriteBackReport,
    WriteBackSettings,
    plan_write_back,
    write_back,
)

__all__ = [
    "FINGERPRINT_LABEL_PREFIX",
    "MANAGED_LABEL",
    "MAX_TICKET_BATCH",
    "BatchResult",
    "DistributeInput",
    "Distributor",
    "PollResult",
    "Poller",
    "StatusMapping",
    "TicketBatch",
    "TicketItem",
    "TicketLedger",
    "TicketPlan",
    "TicketRow",
    "WebhookReceiver",
    "WriteBackAction",
    "WriteBackReport",
    "WriteBackSettings",
    "add_progress_observer",
    "batch_items",
    "distribute_batch",
    "distribute_bulk",
    "distribute_workflow",
    "fingerprint_label",
    "map_status",
    "plan_items",
    "plan_write_back",
    "recommendation_facts",
    "verify_signature",
    "write_back",
]
