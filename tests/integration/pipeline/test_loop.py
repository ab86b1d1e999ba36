"""The whole loop against the Jira simulator on a real port: tickets exactly once, status back.

Week 1 finds and tickets; people close some tickets as done and some as won't do; week 2 (the
demo's next-week bill, with the fixed resources gone) syncs back first and then reconciles, so
done-and-gone is implemented, done-but-still-there is reopened, won't do is dismissed. Then the
crash tests: a process killed by SIGKILL in the middle of the distribute map step, resumed by
``resume_weekly`` (both backends), and, the issue's done-when, two workers on PostgreSQL of
which one is killed mid-distribution while the other finishes: no duplicate, no missing ticket.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from reclaim.cli.demo import next_week
from reclaim.config import JiraConfig
from reclaim.durable import DurableEngine, RunStatus
from reclaim.ingest import bundled_sample
from reclaim.pipeline import WEEKLY, WeeklyInput, resume_weekly, run_weekly
from reclaim.store import upgrade
from reclaim.store.tables.recommend import recommendations
from reclaim.store.tables.sync import recommendation_tickets, tickets
from reclaim.sync import FINGERPRINT_LABEL_PREFIX, BatchResult
from reclaim.tickets import JiraCredentials, connect
from reclaim.tickets.simulator import FaultPlan, JiraState, RunningSimulator, SimulatorApp
from reclaim.tickets.simulator import run_in_thread as simulator_in_thread

TOKEN_ENV = "RECLAIM_TEST_LOOP_TOKEN"


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    with simulator_in_thread(SimulatorApp(JiraState())) as running:
        yield running


@pytest.fixture
def migrated(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv(TOKEN_ENV, "t")
    upgrade(engine)
    return engine


def spec_for(sim: RunningSimulator, **changes: object) -> WeeklyInput:
    jira = JiraConfig(
        url=sim.url,
        email="bot@example.com",
        api_token_env=TOKEN_ENV,
        requests_per_second=None,
        grace_seconds=0.5,
    )
    spec = WeeklyInput(sample=True, jira=jira, default_project="OPS", poll_lag_seconds=0.0)
    return spec.model_copy(update=changes)


def issues_per_fingerprint(sim: RunningSimulator) -> Counter[str]:
    return Counter(
        label.removeprefix(FINGERPRINT_LABEL_PREFIX)
        for issue in sim.app.state.issues.values()
        for label in issue.labels
        if label.startswith(FINGERPRINT_LABEL_PREFIX)
    )


def check_books(sim: RunningSimulator, engine: Engine) -> int:
    """Every recommendation found that no other rule on its resource supersedes has exactly
    one issue, recorded once; the superseded ones none. Returns how many have one."""
    rec = recommendations.c
    with engine.connect() as connection:
        found = connection.execute(sa.select(rec.fingerprint, rec.status, rec.params)).all()
        rows = connection.execute(sa.select(tickets.c.fingerprint, tickets.c.state)).all()
        links = connection.execute(
            sa.select(sa.func.count()).select_from(recommendation_tickets)
        ).scalar_one()
    superseded = {fp for fp, _, params in found if (params or {}).get("superseded_by")}
    assert {status for fp, status, _ in found if fp in superseded} <= {"open"}
    fingerprints = {fp for fp, _, _ in found} - superseded
    statuses = Counter(status for fp, status, _ in found if fp in fingerprints)
    per_fingerprint = issues_per_fingerprint(sim)
    assert set(per_fingerprint) == fingerprints, "a recommendation has no ticket"
    assert [fp for fp, n in per_fingerprint.items() if n != 1] == [], "duplicate tickets"
    assert sorted(fp for fp, _ in rows) == sorted(fingerprints)
    assert {state for _, state in rows} == {"created"}
    assert links == len(fingerprints)
    assert statuses == {"ticketed": len(fingerprints)}
    return len(fingerprints)


def test_two_weeks_ticket_once_and_bring_the_teams_work_back(
    migrated: Engine, sim: RunningSimulator, tmp_path: Path
) -> None:
    first = run_weekly(migrated, spec_for(sim))
    assert first.recommend.counts["new"] > 20
    found = first.distribute.created
    assert found > 20
    assert check_books(sim, migrated) == found
    loop = first.report.loop
    assert (loop.ticketed, loop.done, loop.realized) == (found, 0, 0)

    with migrated.connect() as connection:
        superseded = {
            fp
            for fp, params in connection.execute(
                sa.select(recommendations.c.fingerprint, recommendations.c.params)
            )
            if (params or {}).get("superseded_by")
        }
    assert superseded  # the sample has resources that several rules match
    ticketed_in_week_one = set(issues_per_fingerprint(sim))

    again = run_weekly(migrated, spec_for(sim))  # the same files: nothing new, no new ticket
    assert again.distribute.planned == again.distribute.created == 0
    assert check_books(sim, migrated) == found

    # The people: the first tickets done, the next ones won't do, the rest left alone.
    with migrated.connect() as connection:
        by_key = dict(
            connection.execute(
                sa.select(tickets.c.key, recommendations.c.resource_id)
                .join(recommendation_tickets, recommendation_tickets.c.ticket_id == tickets.c.id)
                .join(
                    recommendations,
                    recommendations.c.id == recommendation_tickets.c.recommendation_id,
                )
                .order_by(tickets.c.id)
            ).all()
        )
    keys = list(by_key)
    done, wont_do = keys[:10], keys[10:14]
    human = JiraCredentials.cloud(sim.url, "human@example.com", "t")
    with connect(human, requests_per_second=None) as client:
        for key in done:
            client.move_to(key, category="done", resolution="Done")
        for key in wont_do:
            client.move_to(key, category="done", resolution="Won't Do")
    # Of the done ones, the first two resources are still running next week.
    still_there = {by_key[key] for key in done[:2]}
    removed = {by_key[key] for key in done} - still_there
    sample = bundled_sample()
    week2 = next_week(sample.billing, sample.inventory, sample.utilization, tmp_path, removed)
    second = run_weekly(
        migrated,
        spec_for(
            sim,
            sample=False,
            billing=[str(week2 / "billing")],
            inventory=[str(week2 / "inventory.csv")],
            utilization=[str(week2 / "utilization.csv")],
        ),
    )
    assert second.sync.events == {"ticket_done": 10, "ticket_wont_do": 4}
    with migrated.connect() as connection:
        status_of = dict(
            connection.execute(
                sa.select(tickets.c.key, recommendations.c.status)
                .join(recommendation_tickets, recommendation_tickets.c.ticket_id == tickets.c.id)
                .join(
                    recommendations,
                    recommendations.c.id == recommendation_tickets.c.recommendation_id,
                )
            ).all()
        )
    for key in done:
        # Still there: reopened by the run, then its ticket reopened by write-back, so it is
        # ticketed again (work to do on the same ticket).
        expected = "ticketed" if by_key[key] in still_there else "implemented"
        assert status_of[key] == expected, key
    assert {status_of[key] for key in wont_do} == {"dismissed"}
    assert second.report.loop.done >= len(done) - 2
    # Reopened ones keep their ticket: no duplicate. The only new tickets are for savings
    # another rule's carried in week 1, whose dominant saving the teams took off the table.
    per_fingerprint = issues_per_fingerprint(sim)
    assert set(per_fingerprint.values()) == {1}
    assert set(per_fingerprint) - ticketed_in_week_one <= superseded
    assert len(per_fingerprint) == found + second.distribute.created
    # Write-back told the tickets: the two whose waste is still there are open again, with
    # reclaim's comment; the ones done and gone stay done.
    assert second.write_back.reopened == 2
    issues = {issue.key: issue for issue in sim.app.state.issues.values()}
    for key in done:
        reopened = by_key[key] in still_there
        assert (issues[key].status_category != "done") is reopened, key
    third = run_weekly(
        migrated,
        spec_for(
            sim,
            sample=False,
            billing=[str(week2 / "billing")],
            inventory=[str(week2 / "inventory.csv")],
            utilization=[str(week2 / "utilization.csv")],
        ),
    )
    assert third.write_back.reopened == 0  # each action once


# -- crashes ------------------------------------------------------------------------------

CHILD = Path(__file__).with_name("loop_child.py")


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[bytes]]]:
    """The processes a test starts; any still running at its end (a failed test) is killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for child in started:
        if child.poll() is None:
            child.kill()
            child.wait()


def start_child(started: list[subprocess.Popen[bytes]], *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, TOKEN_ENV: "t"}
    child = subprocess.Popen([sys.executable, str(CHILD), *args], env=env)
    started.append(child)
    return child


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("point", ["intent", "created", "recorded"])
def test_a_loop_killed_mid_distribution_resumes_with_every_ticket_once(
    migrated: Engine,
    sim: RunningSimulator,
    database_url: tuple[str, str | None],
    children: list[subprocess.Popen[bytes]],
    point: str,
) -> None:
    url, schema = database_url
    # Chunks of three, so several map items (one bulk create each) run four at a time; the
    # seventh intent or key is in the third chunk, the seventh answer the seventh chunk's.
    run_id = DurableEngine(migrated, workflows=[WEEKLY]).start(
        WEEKLY, spec_for(sim, ticket_batch=3).model_dump(mode="json")
    )
    child = start_child(children, "drive", url, schema or "-", run_id, point, "7")
    assert child.wait(timeout=300) == -signal.SIGKILL
    assert DurableEngine(migrated).get_run(run_id).status is RunStatus.RUNNING
    assert sum(issues_per_fingerprint(sim).values()) > 0

    resumed = resume_weekly(migrated, run_id)  # `reclaim runs resume ID` / `run --resume ID`
    found = check_books(sim, migrated)
    assert resumed.distribute.planned == found
    assert resumed.report.loop.ticketed == found


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_two_workers_on_postgresql_one_killed_mid_distribution_no_duplicate_none_missing(
    migrated: Engine,
    sim: RunningSimulator,
    database_url: tuple[str, str | None],
    children: list[subprocess.Popen[bytes]],
) -> None:
    url, schema = database_url
    # Each Jira answer takes a little while, so both workers are busy with items at the kill.
    sim.app.faults.configure(FaultPlan(latency=0.02))
    # Chunks of two: enough map items that both workers hold some when the first one dies at
    # its fourth bulk answer, before recording it.
    run_id = DurableEngine(migrated, workflows=[WEEKLY]).start(
        WEEKLY, spec_for(sim, ticket_batch=2).model_dump(mode="json")
    )
    doomed = start_child(children, "worker", url, schema or "-", "2.0", "created", "4")
    survivor = start_child(children, "worker", url, schema or "-", "2.0", "-", "0")
    assert doomed.wait(timeout=300) == -signal.SIGKILL, "the first worker was not killed mid-way"
    assert survivor.wait(timeout=300) == 0
    durable = DurableEngine(migrated, workflows=[WEEKLY])
    assert durable.get_run(run_id).status is RunStatus.SUCCEEDED
    found = check_books(sim, migrated)
    items = [s for s in durable.steps(run_id) if s.step == "distribute" and s.item_key]
    assert len(items) == (found + 1) // 2
    assert sum(len(BatchResult.model_validate_json(s.output or "{}").keys) for s in items) == found


_ROUTE_DATABASES_NOWHERE = """\
kind: routing
mode: first
facts:
  kind: string
rules:
  - id: databases
    when: kind == 'database'
    action: ticket
    params: {project: NOPE}
  - id: the-rest
    when: "true"
    action: ticket
    params: {project: OPS}
"""


def test_tickets_jira_refuses_are_reported_and_do_not_hold_back_their_chunk(
    migrated: Engine, sim: RunningSimulator, tmp_path: Path
) -> None:
    routing = tmp_path / "routing.yaml"
    routing.write_text(_ROUTE_DATABASES_NOWHERE, encoding="utf-8")
    with migrated.connect() as connection:
        before = connection.execute(sa.select(sa.func.count()).select_from(tickets)).scalar_one()
    assert before == 0
    run = run_weekly(migrated, spec_for(sim, routing=str(routing)))
    with migrated.connect() as connection:
        query = sa.select(recommendations.c.fingerprint, recommendations.c.kind)
        kinds = dict(connection.execute(query).all())
    refused = set(run.distribute.refused)
    assert refused, "the sample has databases to route to the missing project"
    assert {kinds[fp] for fp in refused} == {"database"}
    assert all("project" in reason for reason in run.distribute.refused.values())
    # Refused ones share chunks with the others (default 50), which were all created.
    assert run.distribute.created == run.distribute.planned - len(refused) > 0
    assert set(issues_per_fingerprint(sim)).isdisjoint(refused)

    # Routed to a real project, the next run tickets them, and nothing twice.
    again = run_weekly(migrated, spec_for(sim))
    assert again.distribute.refused == {}
    assert again.distribute.created == len(refused)
    check_books(sim, migrated)
