"""``reclaim tickets distribute|list|show|sync|write-back`` against the simulator."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from tests.integration.sync.test_exactly_once import add_recommendations
from typer.testing import CliRunner

from reclaim.cli.app import app
from reclaim.database import create_engine
from reclaim.recommend import Event, RecommendationStore
from reclaim.store import upgrade
from reclaim.sync import TicketLedger
from reclaim.tickets import JiraCredentials, connect
from reclaim.tickets.simulator import SimulatorApp, run_in_thread


@pytest.mark.timeout(300)
def test_distribute_list_show_sync(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'reclaim.db'}"
    engine = create_engine(url)
    upgrade(engine)
    add_recommendations(engine, 3)
    engine.dispose()
    runner = CliRunner()
    with run_in_thread(SimulatorApp()) as sim:
        env = {
            "RECLAIM_JIRA_URL": sim.url,
            "RECLAIM_JIRA_EMAIL": "bot@example.com",
            "RECLAIM_JIRA_API_TOKEN": "not-printed-token",
        }
        args = ["--db", url, "tickets"]
        done = runner.invoke(
            app,
            [*args, "distribute", "--default-project", "OPS", "--grace", "0", "--rate", "500"],
            env=env,
        )
        assert done.exit_code == 0, done.output
        assert "3 ticket(s) distributed" in done.output
        again = runner.invoke(
            app, [*args, "distribute", "--default-project", "OPS", "--grace", "0"], env=env
        )
        assert "0 ticket(s) distributed" in again.output
        assert len(sim.app.state.issues) == 3
        listed = runner.invoke(app, [*args, "list"], env=env)
        assert listed.exit_code == 0
        assert all(f"OPS-{n}" in listed.output for n in (1, 2, 3))
        with connect(JiraCredentials.cloud(sim.url, "h@x", "t"), requests_per_second=None) as jira:
            jira.move_to("OPS-2", category="done", resolution="Won't Do")
        synced = runner.invoke(app, [*args, "sync", "--lag", "0"], env=env)
        assert synced.exit_code == 0, synced.output
        assert "ticket_wont_do 1" in synced.output
        shown = runner.invoke(app, [*args, "show", "OPS-2"], env=env)
        assert "Won't Do" in shown.output
        missing = runner.invoke(app, [*args, "show", "OPS-99"], env=env)
        assert missing.exit_code != 0

        # Dismissed in reclaim while its ticket is open: write-back closes it as won't do.
        engine = create_engine(url)
        row = TicketLedger(engine).find("OPS-1")
        assert row is not None
        RecommendationStore(engine).apply_event(
            row.fingerprint, Event.DISMISS, snooze=timedelta(days=30)
        )
        engine.dispose()
        written = runner.invoke(app, [*args, "write-back", "--rate", "500"], env=env)
        assert written.exit_code == 0, written.output
        assert "0 reopened, 1 closed" in written.output
        closed = sim.app.state.issue("OPS-1")
        assert (closed.status, closed.resolution) == ("Done", "Won't Do")
        twice = runner.invoke(app, [*args, "write-back"], env=env)
        assert "0 reopened, 0 closed" in twice.output
        for result in (done, again, listed, synced, shown, written):
            assert "not-printed-token" not in result.output
