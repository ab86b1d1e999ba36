"""Write-back over HTTP to the simulator: reopen, close, realized, savings, snooze; exactly once.

On SQLite and on PostgreSQL (the ``world`` fixture of this folder's conftest).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from tests.integration.sync.conftest import ACCOUNT, World

from reclaim.recommend import Status
from reclaim.recommend.fingerprint import fingerprint
from reclaim.store.tables.sync import tickets
from reclaim.sync import WriteBackSettings, write_back


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
