"""Distribution in chunks: one bulk create per chunk, refusals listed, the others created.

On a real simulator over HTTP, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from tests.integration.sync.test_exactly_once import add_recommendations

from reclaim.database import Backend, backend_of
from reclaim.recommend import Event, RecommendationStore, Status
from reclaim.store import upgrade
from reclaim.store.tables.sync import recommendation_tickets, tickets
from reclaim.sync import TicketItem, batch_items, distribute_batch, plan_items
from reclaim.tickets import JiraClient, JiraCredentials, connect
from reclaim.tickets.routing import load_routing
from reclaim.tickets.simulator import RunningSimulator, SimulatorApp, run_in_thread
from reclaim.tickets.templates import load_templates


@pytest.fixture
def jira() -> Iterator[tuple[RunningSimulator, JiraClient]]:
    with (
        run_in_thread(SimulatorApp()) as sim,
        connect(JiraCredentials.cloud(sim.url, "b@x", "t"), requests_per_second=None) as client,
    ):
        yield sim, client


def test_a_refused_ticket_is_listed_and_the_rest_of_its_chunk_is_created(
    engine: Engine, jira: tuple[RunningSimulator, JiraClient]
) -> None:
    upgrade(engine)
    sim, client = jira
    add_recommendations(engine, 5)
    store = RecommendationStore(engine)
    items = plan_items(
        store.find(statuses=[Status.OPEN], limit=None),
        load_routing(None, default_project="OPS"),
        load_templates(None),
    )
    bad = items[2].fingerprint
    items[2] = items[2].model_copy(update={"project": "NOPE"})
    (batch,) = batch_items(items, 50)

    result = distribute_batch(engine, client, batch.items, grace=0)

    assert set(result.refused) == {bad}
    assert "project" in result.refused[bad]
    assert set(result.keys) == {i.fingerprint for i in items} - {bad}
    assert len(sim.app.state.issues) == 4
    statuses = {r.fingerprint: r.status for r in store.find(statuses=list(Status), limit=None)}
    assert statuses[bad] is Status.OPEN
    assert {s for fp, s in statuses.items() if fp != bad} == {Status.TICKETED}
    with engine.connect() as connection:
        ledger = set(connection.execute(sa.select(tickets.c.fingerprint)).scalars())
    assert bad not in ledger  # nothing was created, so its intent is dropped

    # Fixed (here: routed to a real project), the next run creates it and nothing else.
    fixed = [i.model_copy(update={"project": "OPS"}) for i in batch.items]
    again = distribute_batch(engine, client, fixed, grace=0)
    assert again.refused == {}
    assert set(again.keys) == {i.fingerprint for i in items}
    assert len(sim.app.state.issues) == 5
    assert store.apply_event_to_many(
        [r.id for r in store.find(statuses=list(Status), limit=None)], Event.TICKET_CREATED
    ) == sorted(r.id for r in store.find(statuses=list(Status), limit=None))


def test_a_chunk_costs_two_commits_and_as_many_statements_whatever_its_size(
    engine: Engine, jira: tuple[RunningSimulator, JiraClient]
) -> None:
    """Set-based: a chunk's statements do not grow with its tickets (they were three or four
    per ticket), and it commits twice: its intents before the request, then its keys, links
    and recommendations ticketed together. On PostgreSQL the intents are one statement in
    autocommit (committed when it returns, no BEGIN and COMMIT sent around it), so only the
    second commit is a transaction's."""
    upgrade(engine)
    sim, client = jira
    add_recommendations(engine, 50)
    store = RecommendationStore(engine)
    items = plan_items(
        store.find(statuses=[Status.OPEN], limit=None),
        load_routing(None, default_project="OPS"),
        load_templates(None),
    )
    counts = {"statements": 0, "commits": 0}

    def statement(*_: object) -> None:
        counts["statements"] += 1

    def commit(*_: object) -> None:
        counts["commits"] += 1

    def cost(chunk: list[TicketItem]) -> dict[str, int]:
        counts.update(statements=0, commits=0)
        sa.event.listen(engine, "before_cursor_execute", statement)
        sa.event.listen(engine, "commit", commit)
        try:
            result = distribute_batch(engine, client, chunk, grace=0)
        finally:
            sa.event.remove(engine, "before_cursor_execute", statement)
            sa.event.remove(engine, "commit", commit)
        assert set(result.keys) == {i.fingerprint for i in chunk}
        return dict(counts)

    small, large = cost(items[:5]), cost(items[5:])

    assert small == large
    assert large["commits"] == (1 if backend_of(engine) is Backend.POSTGRESQL else 2)
    assert len(sim.app.state.issues) == 50
    ticketed = store.find(statuses=[Status.TICKETED], limit=None)
    assert len(ticketed) == 50
    with engine.connect() as connection:
        links = connection.execute(
            sa.select(sa.func.count()).select_from(recommendation_tickets)
        ).scalar_one()
    assert links == 50
