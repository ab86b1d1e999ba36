"""Distribution as a durable workflow: select the recommendations, then one map item per ticket.

``reclaim.tickets.distribute`` has two steps: ``select`` routes and renders every open
recommendation without a ticket (a checkpointed list, so a resumed run distributes exactly the
same items), and ``distribute``, a map step keyed by fingerprint: a crash after ticket 4,000
resumes at 4,001, and the item in flight is finished by the exactly-once protocol of
:class:`~reclaim.sync.outbound.Distributor`.
"""

from __future__ import annotations

__all__ = [
    "DistributeInput",
    "TicketItem",
    "distribute_bulk",
    "distribute_workflow",
    "needs_ticket",
    "plan_items",
    "recommendation_facts",
]

import contextlib
import threading
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel
from sqlalchemy.engine import Engine

from reclaim.durable import RetryPolicy, StepContext, Workflow
from reclaim.errors import ConfigError
from reclaim.recommend import (
    Event,
    LifecycleError,
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
    "reclaim.tickets.distribute", version="1", input_type=DistributeInput
)


def _database(ctx: StepContext) -> Engine:
    if ctx.database is None:
        raise ConfigError(
            "the distribute workflow needs its run's database",
            fix="run it through a DurableEngine built on reclaim's database",
        )
    return ctx.database


@distribute_workflow.step()
def select(ctx: StepContext) -> list[TicketItem]:
    options = DistributeInput.model_validate(ctx.input or {})
    router = load_routing(options.routing, default_project=options.default_project)
    templates = load_templates(options.templates)
    store = RecommendationStore(_database(ctx))
    ledger = TicketLedger(_database(ctx))
    records = [
        r
        for r in store.find(statuses=list(TICKETABLE), limit=None)
        if needs_ticket(r)
        and ((row := ledger.get(r.fingerprint)) is None or row.state != "created")
    ]
    return plan_items(records[: options.limit] if options.limit else records, router, templates)


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
    key=lambda item: item.fingerprint if isinstance(item, TicketItem) else item["fingerprint"],
    concurrency=4,
    retry=RetryPolicy(
        attempts=5, backoff_base=1.0, backoff_max=30.0, permanent=(JiraRequestError,)
    ),
)
def distribute(ctx: StepContext, item: TicketItem) -> str:
    options = DistributeInput.model_validate(ctx.input or {})
    client = client_factory(options)
    ledger = TicketLedger(_database(ctx))
    key = Distributor(client, ledger, grace=options.grace).distribute(plan_of(item))
    _mark_ticketed(RecommendationStore(_database(ctx)), [item.recommendation_id])
    return key


def _mark_ticketed(store: RecommendationStore, recommendation_ids: Iterable[int]) -> None:
    for recommendation_id in recommendation_ids:
        # Already ticketed means an earlier attempt crashed after applying the event.
        with contextlib.suppress(LifecycleError):
            store.apply_event(recommendation_id, Event.TICKET_CREATED)


def distribute_bulk(
    database: Engine, client: JiraClient, items: Iterable[TicketItem], *, grace: float = 30.0
) -> tuple[dict[str, str], dict[str, str]]:
    """Distribute with bulk creates (50 per request) outside a workflow; same protocol.

    Returns (fingerprint → key, fingerprint → Jira's refusal). Safe to run again after any
    crash: intents left behind are reconciled first.
    """
    plans = [plan_of(item) for item in items]
    keys, refused = Distributor(client, TicketLedger(database), grace=grace).distribute_many(plans)
    by_fingerprint = {p.fingerprint: p.recommendation_id for p in plans}
    _mark_ticketed(
        RecommendationStore(database),
        [rid for fp in keys if (rid := by_fingerprint.get(fp)) is not None],
    )
    return keys, refused
