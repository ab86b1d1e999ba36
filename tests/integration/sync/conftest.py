"""A small world for the write-back tests: recommend runs, tickets, polls, on a real simulator.

Recommendations go through real recommend runs (``record_run``), tickets through the real
distribution and the real poll; every Jira call is HTTP to the simulator on a real port.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

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
from reclaim.sync import Poller, StatusMapping, distribute_bulk, plan_items
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
