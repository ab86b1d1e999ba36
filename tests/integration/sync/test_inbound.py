"""Inbound poll: status changes made in Jira flow back into the recommendations, once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from tests.integration.sync.test_exactly_once import add_recommendations

from reclaim.recommend import Event, RecommendationStore, Status
from reclaim.store import upgrade
from reclaim.sync import Poller, StatusMapping, distribute_bulk, map_status, plan_items
from reclaim.tickets import JiraClient, JiraCredentials, connect
from reclaim.tickets.routing import load_routing
from reclaim.tickets.simulator import SimulatorApp, run_in_thread
from reclaim.tickets.templates import load_templates


@pytest.fixture
def jira() -> Iterator[JiraClient]:
    with (
        run_in_thread(SimulatorApp()) as sim,
        connect(JiraCredentials.cloud(sim.url, "b@x", "t"), requests_per_second=None) as client,
    ):
        yield client


def test_map_status() -> None:
    mapping = StatusMapping(per_project={"FIN": frozenset({"Declined"})})
    assert map_status(mapping, "OPS", "new", "done", "Done") is Event.TICKET_DONE
    assert map_status(mapping, "OPS", "indeterminate", "done", "Won't Do") is Event.TICKET_WONT_DO
    assert map_status(mapping, "FIN", "new", "done", "Won't Do") is Event.TICKET_DONE
    assert map_status(mapping, "FIN", "new", "done", "Declined") is Event.TICKET_WONT_DO
    assert map_status(mapping, "OPS", "done", "new", None) is Event.TICKET_REOPENED
    assert map_status(mapping, "OPS", "new", "indeterminate", None) is None
    assert map_status(mapping, "OPS", "done", "done", "Done") is None


def test_poll_applies_each_change_once_and_advances_the_watermark(
    jira: JiraClient, engine: Engine
) -> None:
    upgrade(engine)
    add_recommendations(engine, 3)
    store = RecommendationStore(engine)
    items = plan_items(
        store.find(statuses=[Status.OPEN], limit=None),
        load_routing(None, default_project="OPS"),
        load_templates(None),
    )
    keys, _ = distribute_bulk(engine, jira, items, grace=0)
    by_fp = {item.fingerprint: item.recommendation_id for item in items}
    done_fp, wont_fp, open_fp = sorted(keys)
    jira.move_to(keys[done_fp], category="done", resolution="Done")
    jira.move_to(keys[wont_fp], category="done", resolution="Won't Do")
    jira.move_to(keys[open_fp], category="indeterminate")

    poller = Poller(jira, engine, lag_ms=0)
    first = poller.poll()
    assert first.applied == 3
    assert first.events == {"ticket_done": 1, "ticket_wont_do": 1}
    assert first.watermark_ms > 0
    assert poller.watermark() == first.watermark_ms
    dismissed = store.get(by_fp[wont_fp])
    assert dismissed is not None
    assert dismissed.status is Status.DISMISSED
    assert dismissed.snoozed_until is not None
    done = store.get(by_fp[done_fp])
    assert done is not None
    assert done.ticket_done_at is not None

    again = poller.poll()
    assert (again.applied, again.events) == (0, {})  # the overlap re-reads, nothing re-applied

    # A person reopens a done ticket: the work is to do again, so the next run must not take
    # the resource's absence as the team's work (implemented) while the ticket is open.
    jira.move_to(keys[done_fp], category="new")
    third = poller.poll()
    assert (third.applied, third.events) == (1, {"ticket_reopened": 1})
    assert third.watermark_ms > first.watermark_ms
    reopened = store.get(by_fp[done_fp])
    assert reopened is not None
    assert (reopened.status, reopened.ticket_done_at) == (Status.TICKETED, None)

    # … and one reopened from won't do withdraws the dismissal.
    jira.move_to(keys[wont_fp], category="new")
    assert poller.poll().events == {"ticket_reopened": 1}
    undismissed = store.get(by_fp[wont_fp])
    assert undismissed is not None
    assert (undismissed.status, undismissed.snoozed_until) == (Status.TICKETED, None)
