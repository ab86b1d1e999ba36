"""Distribution as a durable workflow: select the recommendations, then one map item per chunk.

``reclaim.tickets.distribute`` has two steps: ``select`` routes and renders every open
recommendation without a ticket and cuts the list into chunks of up to 50 (a checkpointed
list, so a resumed run distributes exactly the same chunks), and ``distribute``, a map step
keyed by chunk: each chunk is one bulk create in Jira and a handful of commits, finished by the
exactly-once protocol of :meth:`~reclaim.sync.outbound.Distributor.distribute_many`. A crash
after chunk 80 resumes at chunk 81; the chunk in flight is reconciled by fingerprint label.
A ticket Jira refuses (a bad field, an unknown project) is listed in its chunk's output and
does not hold back the others.
"""

from __future__ import annotations

__all__ = [
    "MAX_TICKET_BATCH",
    "BatchResult",
    "DistributeInput",
    "TicketBatch",
    "TicketItem",
    "batch_items",
    "distribute_batch",
    "distribute_bulk",
    "distribute_workflow",
    "needs_ticket",
    "plan_items",
    "recommendation_facts",
]

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection, Engine

from reclaim.durable import RetryPolicy, StepContext, Workflow
from reclaim.errors import ConfigError
from reclaim.recommend import (
    Event,
    RecommendationRecord,
    RecommendationStore,
    Status,
)
from reclaim.sync.ledger import TicketLedger
from reclaim.sync.outbound import Distributor, TicketPlan
from reclaim.tickets import (
    IssueDraft,
    JiraClient,
    JiraRequestError,
    connect,
    credentials_from_env,
)
from reclaim.tickets.routing import Router, load_routing
from reclaim.tickets.templates import TicketTemplates, load_templates, markup_to_document


class DistributeInput(BaseModel):
    routing: str | None = None
    templates: str | None = None
    default_project: str | None = None
    grace: float = 30.0
    limit: int | None = None
    requests_per_second: float | None = 10.0
    ticket_batch: int = Field(default=50, ge=1, le=50)
    """Tickets per map item (one bulk create each); 1 is one ticket per item."""


# Jira's bulk create takes at most 50 issues per request.
MAX_TICKET_BATCH = 50


class TicketItem(BaseModel):
    fingerprint: str
    recommendation_id: int
    project: str
    issue_type: str
    summary: str
    description: str
    labels: list[str]
    components: list[str]
    assignee: str | None
    priority: str | None


class TicketBatch(BaseModel):
    """One map item: up to 50 tickets, distributed with one bulk create."""

    key: str
    items: list[TicketItem]


class BatchResult(BaseModel):
    """What one chunk did: the tickets it has (fingerprint → key) and Jira's refusals."""

    keys: dict[str, str] = Field(default_factory=dict)
    refused: dict[str, str] = Field(default_factory=dict)


def batch_items(items: Sequence[TicketItem], size: int = MAX_TICKET_BATCH) -> list[TicketBatch]:
    """Cut ``items`` into chunks of ``size``, each keyed by its first fingerprint and its count.

    The key names the chunk for the durable engine's item checkpoints; the list is cut once, in
    a checkpointed step, so a resumed run finds the same keys.
    """
    if not 1 <= size <= MAX_TICKET_BATCH:
        raise ConfigError(
            f"a ticket batch of {size} is out of range",
            fix=f"use 1 to {MAX_TICKET_BATCH} tickets per batch (Jira's bulk create limit)",
        )
    return [
        TicketBatch(key=f"{chunk[0].fingerprint}+{len(chunk)}", items=list(chunk))
        for chunk in (items[i : i + size] for i in range(0, len(items), size))
    ]


def batch_key(batch: object) -> str:
    # The engine keys the checkpointed list (plain dicts) as well as the typed chunks.
    if isinstance(batch, TicketBatch):
        return batch.key
    if isinstance(batch, dict):
        return str(batch["key"])
    raise TypeError(f"not a ticket batch: {batch!r}")


def recommendation_facts(record: RecommendationRecord) -> dict[str, Any]:
    """What routing rules and ticket templates see of one recommendation."""
    params = dict(record.params or {})
    tags = params.get("tags")
    return {
        "fingerprint": record.fingerprint,
        "rule_id": record.rule_id,
        "resource_id": record.resource_id,
        "account_id": record.account_id,
        "resource_name": record.resource_name,
        "kind": record.kind,
        "region": record.region,
        "owner": record.owner,
        "title": record.title,
        "monthly_savings": float(record.monthly_savings),
        "cost_30d": float(record.cost_30d) if record.cost_30d is not None else None,
        "currency": record.currency,
        "tags": tags if isinstance(tags, dict) else {},
        "explanation": params.get("description"),
        "how_to_fix": params.get("how_to_fix"),
        "link": None,
        "params": params,
    }


def plan_items(
    records: Iterable[RecommendationRecord], router: Router, templates: TicketTemplates
) -> list[TicketItem]:
    """Route and render a ticket for each record that needs one (:func:`needs_ticket`)."""
    items = []
    for record in records:
        if not needs_ticket(record):
            continue
        facts = recommendation_facts(record)
        route = router.route(facts)
        rendered = templates.render(facts)
        items.append(
            TicketItem(
                fingerprint=record.fingerprint,
                recommendation_id=record.id,
                project=route.project,
                issue_type=route.issue_type,
                summary=rendered.summary,
                description=rendered.markup,
                labels=list(dict.fromkeys((*rendered.labels, *route.labels))),
                components=list(route.components),
                assignee=route.assignee,
                priority=route.priority,
            )
        )
    return items


def plan_of(item: TicketItem) -> TicketPlan:
    draft = IssueDraft(
        project=item.project,
        summary=item.summary,
        issue_type=item.issue_type,
        description=markup_to_document(item.description),
        labels=tuple(item.labels),
        components=tuple(item.components),
        assignee=item.assignee,
        priority=item.priority,
    )
    return TicketPlan(item.fingerprint, item.recommendation_id, draft)


_clients: dict[tuple[object, ...], JiraClient] = {}
_clients_lock = threading.Lock()


def shared_client(options: DistributeInput) -> JiraClient:
    """One client per process: the map step's concurrent items share its pacer."""
    credentials = credentials_from_env()
    key = (credentials, options.requests_per_second)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = connect(credentials, requests_per_second=options.requests_per_second)
            _clients[key] = client
        return client


# The Jira client a run uses; tests and embedding applications may replace the factory.
client_factory: Callable[[DistributeInput], JiraClient] = shared_client

distribute_workflow = Workflow(
    "reclaim.tickets.distribute", version="2", input_type=DistributeInput
)


def _database(ctx: StepContext) -> Engine:
    if ctx.database is None:
        raise ConfigError(
            "the distribute workflow needs its run's database",
            fix="run it through a DurableEngine built on reclaim's database",
        )
    return ctx.database


@distribute_workflow.step()
def select(ctx: StepContext) -> list[TicketBatch]:
    options = DistributeInput.model_validate(ctx.input or {})
    router = load_routing(options.routing, default_project=options.default_project)
    templates = load_templates(options.templates)
    store = RecommendationStore(_database(ctx))
    ledger = TicketLedger(_database(ctx))
    candidates = [r for r in store.find(statuses=list(TICKETABLE), limit=None) if needs_ticket(r)]
    known = ledger.get_many([r.fingerprint for r in candidates])
    records = [
        r for r in candidates if (row := known.get(r.fingerprint)) is None or row.state != "created"
    ]
    items = plan_items(records[: options.limit] if options.limit else records, router, templates)
    return batch_items(items, options.ticket_batch)


# Open, and reopened without a ticket (dismissed with no ticket, then back after its snooze).
# A reopened one that has a ticket gets that ticket reopened by write-back, never a second one.
TICKETABLE = (Status.OPEN, Status.REOPENED)


def needs_ticket(record: RecommendationRecord) -> bool:
    """Whether ``record`` should get a ticket: ticketable, not ticketed, not superseded.

    A superseded recommendation (another rule on the same resource carries its saving, see
    ``reclaim.recommend.overlap``) gets no ticket of its own: the team gets one ticket, for
    the dominant action. If the dominant one goes away, the next run moves the saving back and
    the recommendation is distributed then.
    """
    if record.status not in TICKETABLE:
        return False
    if record.status is Status.REOPENED and record.ticketed_at is not None:
        return False
    return not (record.params or {}).get("superseded_by")


@distribute_workflow.map_step(
    over="select",
    key=batch_key,
    concurrency=4,
    retry=RetryPolicy(
        attempts=5, backoff_base=1.0, backoff_max=30.0, permanent=(JiraRequestError,)
    ),
)
def distribute(ctx: StepContext, batch: TicketBatch) -> BatchResult:
    options = DistributeInput.model_validate(ctx.input or {})
    return distribute_batch(
        _database(ctx), client_factory(options), batch.items, grace=options.grace
    )


def distribute_batch(
    database: Engine, client: JiraClient, items: Sequence[TicketItem], *, grace: float = 30.0
) -> BatchResult:
    """One chunk, exactly once: intents, one bulk create, the keys, then the recommendations
    marked ticketed in one transaction. Safe to run again after any crash: the ledger knows
    the tickets already made, and intents left behind are reconciled by label first."""
    keys, refused = distribute_bulk(database, client, items, grace=grace)
    return BatchResult(keys=keys, refused=refused)


def distribute_bulk(
    database: Engine, client: JiraClient, items: Iterable[TicketItem], *, grace: float = 30.0
) -> tuple[dict[str, str], dict[str, str]]:
    """Distribute with bulk creates (50 per request) outside a workflow; same protocol.

    Returns (fingerprint → key, fingerprint → Jira's refusal). The recommendations are marked
    ticketed in the transaction that records their tickets. Safe to run again after any
    crash: intents left behind are reconciled first.
    """
    store = RecommendationStore(database)

    def mark_ticketed(connection: Connection, recommendation_ids: list[int]) -> None:
        # Those already ticketed were marked by an earlier attempt (a ticket found by
        # reconcile, say); the batch variant leaves them as they are.
        store.apply_event_to_many(recommendation_ids, Event.TICKET_CREATED, connection=connection)

    plans = [plan_of(item) for item in items]
    distributor = Distributor(
        client, TicketLedger(database), grace=grace, on_recorded=mark_ticketed
    )
    return distributor.distribute_many(plans)
