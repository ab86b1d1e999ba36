"""Write-back killed by SIGKILL at each point of its protocol, then resumed: nothing twice.

The child process writes back three actions (a reopen, a close, a savings update) to the
simulator on a real port and dies at one point: after an action is recorded as pending (before
Jira is called), after Jira did it (before it is recorded), and after it is recorded (before the
lifecycle event). The resumed write-back, once the dead process's lease has run out, must leave
each ticket in its state with exactly one marked comment per action, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import traceback
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from tests.integration.sync.conftest import World

from reclaim.database import create_engine
from reclaim.recommend import Status
from reclaim.sync import add_progress_observer, write_back
from reclaim.sync.writeback import MARKER_PREFIX
from reclaim.tickets import JiraCredentials, connect


def _forked(url: str, schema: str | None, jira_url: str, point: str, at: int) -> None:
    try:
        engine = create_engine(url, schema=schema)
        seen = 0

        def observer(name: str, fingerprint: str) -> None:
            nonlocal seen
            if name == point:
                seen += 1
                if seen == at:
                    os.kill(os.getpid(), signal.SIGKILL)

        add_progress_observer(observer)
        credentials = JiraCredentials.cloud(jira_url, "b@x", "t")
        with connect(credentials, requests_per_second=None) as client:
            write_back(engine, client)
    except Exception:
        traceback.print_exc()
        os._exit(3)
    os._exit(0)


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("point", "at"),
    [
        ("writeback-intent", 1),
        ("writeback-sent", 1),
        ("writeback-sent", 3),
        ("writeback-recorded", 1),
    ],
)
def test_write_back_killed_then_resumed_does_each_action_once(
    world: World, database_url: tuple[str, str | None], point: str, at: int
) -> None:
    world.jira.move_to(world.key("vm-a"), category="done", resolution="Done")
    world.poll()
    world.run(("vm-a", 100.0), ("vm-c", 400.0), days=7)  # a back, b gone, c's saving moved
    url, schema = database_url
    world.engine.dispose()  # the child must not share the parent's pooled connections
    process = multiprocessing.get_context("fork").Process(
        target=_forked, args=(url, schema, world.sim.url, point, at)
    )
    process.start()
    process.join(timeout=120)
    assert process.exitcode == -signal.SIGKILL

    held = write_back(world.engine, world.jira)
    later = write_back(
        world.engine, world.jira, now=lambda: datetime.now(UTC) + timedelta(minutes=3)
    )
    assert held.failed == later.failed == {}
    # Within the dead process's lease its action waits; a recorded one only owed its event.
    assert held.busy == (0 if point == "writeback-recorded" else 1)
    assert (world.category("vm-a"), world.category("vm-b"), world.category("vm-c")) == (
        "new",
        "done",
        "new",
    )
    marks = Counter(
        c.body_text.split(MARKER_PREFIX, 1)[1].split("@")[0]
        for resource in ("vm-a", "vm-b", "vm-c")
        for c in world.jira.comments(world.key(resource))
        if MARKER_PREFIX in c.body_text
    )
    assert marks == {"reopen": 1, "close": 1, "savings": 1}
    assert world.status("vm-a") is Status.TICKETED
    assert write_back(world.engine, world.jira).actions == 0
    assert len(world.sim.app.state.issues) == 3
