"""Sync between recommendations and Jira: outbound exactly once per fingerprint.

:class:`Distributor` creates tickets with the intent → create → record protocol and reconciles
by fingerprint label; :data:`distribute_workflow` runs it as a durable map step keyed by
fingerprint. See docs/jira.md, "How exactly-once works".
"""

from __future__ import annotations

from reclaim.sync.distribution import (
    DistributeInput,
    TicketItem,
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

__all__ = [
    "FINGERPRINT_LABEL_PREFIX",
    "MANAGED_LABEL",
    "DistributeInput",
    "Distributor",
    "PollResult",
    "Poller",
    "StatusMapping",
    "TicketItem",
    "TicketLedger",
    "TicketPlan",
    "TicketRow",
    "WebhookReceiver",
    "add_progress_observer",
    "distribute_bulk",
    "distribute_workflow",
    "fingerprint_label",
    "map_status",
    "plan_items",
    "recommendation_facts",
    "verify_signature",
]
