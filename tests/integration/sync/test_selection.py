"""Which recommendations get a ticket: superseded ones do not; reopened ones without one do.

Recommendations come from real recommend runs, on SQLite and PostgreSQL; the selection is the
distribute workflow's own ``select`` step and ``plan_items`` (what every distribution uses).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
from sqlalchemy.engine import Engine

from reclaim.durable import DurableEngine, Workflow
from reclaim.recommend import Event, RecommendationStore, Status
from reclaim.recommend.fingerprint import fingerprint
from reclaim.recommend.recommender import record_run
from reclaim.recommend.reconcile import MATCH_COLUMNS, Scope
from reclaim.store import upgrade
from reclaim.sync import DistributeInput, TicketBatch, plan_items
from reclaim.sync.distribution import select
from reclaim.tickets.routing import load_routing
from reclaim.tickets.templates import load_templates

# The distribute workflow's own select step, alone: the map step would need a Jira.
select_only = Workflow("tests.sync.select-only", input_type=DistributeInput)
select_only.step(name="select")(select)

T0 = datetime(2026, 11, 2, tzinfo=UTC)
SCOPE = Scope(frozenset({"idle-vm", "previous-generation", "old-snapshot"}))


def match(rule: str, resource: str, savings: float, action: str) -> dict[str, object]:
    return {
        "fingerprint": fingerprint(rule, resource, "111"),
        "rule_id": rule,
        "resource_id": resource,
        "account_id": "111",
        "title": f"{rule} on {resource}",
        "monthly_savings": savings,
        "currency": "USD",
        "params": f'{{"type":"{action}"}}',
        "action": action,
    }


def run(store: RecommendationStore, rows: list[dict[str, object]], run_id: str, days: int) -> None:
    frame = pl.DataFrame(rows, schema={**MATCH_COLUMNS})
    record_run(store, frame, scope=SCOPE, run_id=run_id, now=T0 + timedelta(days=days))


def selected(engine: Engine) -> list[str]:
    """The fingerprints the distribute workflow's select step would ticket."""
    items = plan_items(
        RecommendationStore(engine).find(statuses=list(Status), limit=None),
        load_routing(None, default_project="OPS"),
        load_templates(None),
    )
    return sorted(item.fingerprint for item in items)


def test_a_superseded_recommendation_gets_no_ticket(engine: Engine) -> None:
    upgrade(engine)
    store = RecommendationStore(engine)
    idle = match("idle-vm", "vm-1", 100.0, "stop")
    modernize = match("previous-generation", "vm-1", 5.0, "modify")
    alone = match("previous-generation", "vm-2", 7.0, "modify")
    run(store, [idle, modernize, alone], "r1", 0)
    superseded = store.get(str(modernize["fingerprint"]))
    assert superseded is not None
    assert superseded.params.get("superseded_by") == "idle-vm"
    assert selected(engine) == sorted([str(idle["fingerprint"]), str(alone["fingerprint"])])

    # The VM stops matching idle-vm (it is busy again): the saving moves back, and so does the
    # ticket.
    run(store, [modernize, alone], "r2", 7)
    assert str(modernize["fingerprint"]) in selected(engine)


def test_the_select_step_skips_superseded_and_picks_up_reopened_without_ticket(
    engine: Engine,
) -> None:
    upgrade(engine)
    store = RecommendationStore(engine)
    idle = match("idle-vm", "vm-1", 100.0, "stop")
    modernize = match("previous-generation", "vm-1", 5.0, "modify")
    snapshot = match("old-snapshot", "snap-1", 3.0, "delete")
    run(store, [idle, modernize, snapshot], "r1", 0)
    # Dismissed without a ticket, then back once the snooze is over: reopened, and ticketable.
    store.apply_event(str(snapshot["fingerprint"]), Event.DISMISS, now=T0, snooze=timedelta(days=1))
    run(store, [idle, modernize, snapshot], "r2", 7)
    assert store.get(str(snapshot["fingerprint"])).status is Status.REOPENED  # type: ignore[union-attr]

    result = DurableEngine(engine).run_workflow(select_only, {"default_project": "OPS"})
    items = [item for batch in result for item in TicketBatch.model_validate(batch).items]
    assert sorted(i.fingerprint for i in items) == sorted(
        [str(idle["fingerprint"]), str(snapshot["fingerprint"])]
    )
