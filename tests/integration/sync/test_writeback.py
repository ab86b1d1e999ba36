"""Write-back over HTTP to the simulator: reopen, close, realized, savings, snooze; exactly once.

Recommendations go through real recommend runs (``record_run``), tickets through the real
distribution and the real poll, on SQLite and on PostgreSQL; every Jira call is HTTP to the
simulator on a real port.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import polars as pl
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from reclaim.recommend import RecommendationStore, Status
from reclaim.recommend.fingerprint import fingerprint
from reclaim.recommend.recommender import record_run
from reclaim.recommend.reconcile import MATCH_COLUMNS, Scope
from reclaim.store import upgrade
from reclaim.store.tables.sync import tickets
from reclaim.sync import (
    Poller,
    StatusMapping,
    WriteBackSettings,
    distribute_bulk,
    plan_items,
    write_back,
)
from reclaim.sync.writeback import MARKER_PREFIX
from reclaim.tickets import JiraClient, JiraCredentials, connect
from reclaim.tickets.routing import load_routing
from reclaim.tickets.simulator import RunningSimulator, SimulatorApp, run_in_thread
from reclaim.tickets.templates import load_templates

SCOPE = Scope(frozenset({"idle-vm"}))
ACCOUNT = "111111111111"


def matches(*items: tuple[str, float]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "fingerprint": fingerprint("idle-vm", resource, ACCOUNT),
                "rule_id": "idle-vm",
                "resource_id": resource,
                "account_id": ACCOUNT,
                "resource_name": resource,
                "kind": "vm",
                "owner": "team-a",
                "title": f"Stop idle VM {resource}",
                "monthly_savings": savings,
                "savings_method": "30-day actual",
                "cost_30d": savings,
                "currency": "USD",
                "params": '{"type":"stop"}',
                "action": "stop",
            }
            for resource, savings in items
        ],
        schema={**MATCH_COLUMNS},
    )


@dataclass
class World:
    engine: Engine
    sim: RunningSimulator
    jira: JiraClient
    store: RecommendationStore
    start: datetime
    runs: int = 0

    def run(self, *items: tuple[str, float], days: float) -> None:
        self.runs += 1
        record_run(
            self.store,
            matches(*items),
            scope=SCOPE,
            run_id=f"run-{self.runs}",
            now=self.start + timedelta(days=days),
        )

    def distribute(self) -> dict[str, str]:
        records = self.store.find(statuses=[Status.OPEN, Status.REOPENED], limit=None)
        items = plan_items(records, load_routing(None, default_project="OPS"), load_templates(None))
        keys, refused = distribute_bulk(self.engine, self.jira, items, grace=0)
        assert refused == {}
        return dict(keys.items())

    def poll(self, snooze: timedelta = timedelta(days=90)) -> dict[str, int]:
        mapping = StatusMapping(snooze=snooze)
        return Poller(self.jira, self.engine, lag_ms=0, mapping=mapping).poll().events

    def key(self, resource: str) -> str:
        row = self._ticket(resource)
        return str(row.key)

    def _ticket(self, resource: str) -> sa.Row[tuple[object, ...]]:
        fp = fingerprint("idle-vm", resource, ACCOUNT)
        with self.engine.connect() as connection:
            return connection.execute(sa.select(tickets).where(tickets.c.fingerprint == fp)).one()

    def status(self, resource: str) -> Status:
        record = self.store.get(fingerprint("idle-vm", resource, ACCOUNT))
        assert record is not None
        return record.status

    def markers(self, resource: str) -> list[str]:
        return [
            c.body_text.split(MARKER_PREFIX, 1)[1].strip()
            for c in self.jira.comments(self.key(resource))
            if MARKER_PREFIX in c.body_text
        ]

    def category(self, resource: str) -> str:
        return self.jira.get_issue(self.key(resource)).status_category


@pytest.fixture
def world(engine: Engine) -> Iterator[World]:
    upgrade(engine)
    with (
        run_in_thread(SimulatorApp()) as sim,
        connect(JiraCredentials.cloud(sim.url, "b@x", "t"), requests_per_second=None) as jira,
    ):
        start = datetime.now(UTC).replace(microsecond=0)
        world = World(engine, sim, jira, RecommendationStore(engine), start)
        world.run(("vm-a", 100.0), ("vm-b", 200.0), ("vm-c", 300.0), days=0)
        world.distribute()
        yield world


def test_a_recommendation_back_after_done_reopens_its_ticket_once(world: World) -> None:
    world.jira.move_to(world.key("vm-a"), category="done", resolution="Done")
    assert world.poll() == {"ticket_done": 1}
    world.run(("vm-a", 100.0), ("vm-b", 200.0), ("vm-c", 300.0), days=7)
    assert world.status("vm-a") is Status.REOPENED

    report = write_back(world.engine, world.jira)
    assert (report.reopened, report.closed, report.failed) == (1, 0, {})
    assert report.events == {"ticket_reopened": 1}
    assert world.category("vm-a") == "new"
    assert len(world.markers("vm-a")) == 1
    assert world.markers("vm-a")[0].startswith("reopen@")
    assert world.status("vm-a") is Status.TICKETED
    assert world.store.get(fingerprint("idle-vm", "vm-a", ACCOUNT)).ticket_done_at is None  # type: ignore[union-attr]

    again = write_back(world.engine, world.jira)
    assert (again.actions, again.events, again.recognised) == (0, {}, 0)
    assert len(world.markers("vm-a")) == 1
    # reclaim's own reopen is recorded as applied: the poll does not read it back as a person's.
    assert world.poll() == {}
    assert len(list(world.sim.app.state.issues.values())) == 3  # never a second ticket


def test_gone_while_open_closes_and_verified_work_is_commented_once(world: World) -> None:
    world.jira.move_to(world.key("vm-c"), category="done", resolution="Done")
    world.poll()
    world.run(("vm-a", 100.0), days=7)  # vm-b vanished by itself, vm-c's ticket did the work
    assert (world.status("vm-b"), world.status("vm-c")) == (Status.RESOLVED, Status.IMPLEMENTED)

    report = write_back(world.engine, world.jira)
    assert report.failed == {}
    assert report.closed == 1  # vm-b; vm-c's ticket is done already: a comment alone
    assert report.commented == 1
    issue_b = world.jira.get_issue(world.key("vm-b"))
    assert (issue_b.status_category, issue_b.resolution) == ("done", "Done")
    assert [m.split("@")[0] for m in world.markers("vm-b")] == ["close"]
    assert [m.split("@")[0] for m in world.markers("vm-c")] == ["close"]
    assert "realized" in world.jira.comments(world.key("vm-c"))[-1].body_text
    assert world.markers("vm-a") == []
    assert world.category("vm-a") == "new"

    again = write_back(world.engine, world.jira)
    assert again.actions == again.commented == 0
    assert len(world.markers("vm-b")) == len(world.markers("vm-c")) == 1
    assert world.poll() == {}  # the close is not read back as the team finishing the work


def test_a_material_change_of_savings_is_posted_once_and_a_small_one_not(world: World) -> None:
    world.run(("vm-a", 180.0), ("vm-b", 205.0), ("vm-c", 300.0), days=7)
    report = write_back(world.engine, world.jira)
    assert (report.savings_updated, report.failed) == (1, {})
    assert world.markers("vm-a") == ["savings@180.00"]
    assert "100.00 USD" in world.jira.comments(world.key("vm-a"))[-1].body_text
    assert world.jira.get_property(world.key("vm-a"), "reclaim")["monthly_savings"] == "180.00"
    assert world.markers("vm-b") == []
    assert world.markers("vm-c") == []
    assert write_back(world.engine, world.jira).actions == 0

    # Measured from what the ticket shows now (180), not from what it was created with.
    world.run(("vm-a", 200.0), ("vm-b", 205.0), ("vm-c", 300.0), days=14)
    assert write_back(world.engine, world.jira).actions == 0
    world.run(("vm-a", 90.0), ("vm-b", 205.0), ("vm-c", 300.0), days=21)
    assert write_back(world.engine, world.jira).savings_updated == 1
    assert world.markers("vm-a") == ["savings@180.00", "savings@90.00"]


def test_wont_do_is_reticketed_when_the_snooze_ends(world: World) -> None:
    world.jira.move_to(world.key("vm-a"), category="done", resolution="Won't Do")
    assert world.poll(snooze=timedelta(days=30)) == {"ticket_wont_do": 1}
    assert world.status("vm-a") is Status.DISMISSED
    world.run(("vm-a", 100.0), ("vm-b", 200.0), ("vm-c", 300.0), days=7)
    assert world.status("vm-a") is Status.DISMISSED  # snoozed: nothing happens
    assert write_back(world.engine, world.jira).actions == 0
    assert world.distribute() == {}

    world.run(("vm-a", 100.0), ("vm-b", 200.0), ("vm-c", 300.0), days=40)
    assert world.status("vm-a") is Status.REOPENED
    assert world.distribute() == {}  # the same ticket comes back, never a second one
    report = write_back(world.engine, world.jira)
    assert report.reopened == 1
    assert world.category("vm-a") == "new"
    assert world.status("vm-a") is Status.TICKETED
    assert len(world.sim.app.state.issues) == 3


def test_a_lost_answer_is_checked_in_jira_not_sent_again(world: World) -> None:
    world.jira.move_to(world.key("vm-a"), category="done", resolution="Done")
    world.poll()
    world.run(("vm-a", 100.0), ("vm-c", 300.0), days=7)  # vm-a back, vm-b gone
    httpx.put(f"{world.sim.url}/_sim/faults", json={"lose_writes": 2}).raise_for_status()
    report = write_back(world.engine, world.jira)
    assert report.failed == {}
    assert report.recognised == 2
    assert (world.category("vm-a"), world.category("vm-b")) == ("new", "done")
    assert len(world.markers("vm-a")) == len(world.markers("vm-b")) == 1
    assert world.status("vm-a") is Status.TICKETED


def test_the_claim_keeps_two_writers_off_one_ticket(world: World) -> None:
    world.run(("vm-a", 100.0), ("vm-c", 300.0), days=7)
    now = datetime.now(UTC)
    key = world.key("vm-b")
    with world.engine.begin() as connection:
        connection.execute(
            tickets.update()
            .where(tickets.c.key == key)
            .values(writeback_pending="close@1", writeback_pending_at=now)
        )
    held = write_back(world.engine, world.jira)
    assert (held.busy, held.closed) == (1, 0)
    later = write_back(
        world.engine,
        world.jira,
        settings=WriteBackSettings(lease=timedelta(minutes=10)),
        now=lambda: now + timedelta(minutes=11),
    )
    assert (later.busy, later.closed) == (0, 1)
