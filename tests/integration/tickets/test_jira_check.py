"""``reclaim jira check`` finds bad projects, issue types, components before the first ticket."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.integration.tickets.conftest import EMAIL, TOKEN
from typer.testing import CliRunner

import reclaim.tickets
from reclaim.cli.app import app
from reclaim.tickets import JiraClient
from reclaim.tickets.check import check_routes
from reclaim.tickets.routing import TicketRoute
from reclaim.tickets.simulator import RunningSimulator

EXAMPLE = Path(reclaim.tickets.__file__).parent / "examples" / "routing.yaml"


def test_check_routes_names_each_problem(jira: JiraClient) -> None:
    routes = [
        TicketRoute("OPS", components=("storage",), priority="High", rule_id="storage"),
        TicketRoute("XYZ", rule_id="team-tag"),
        TicketRoute("OPS", issue_type="Epic", rule_id="epics"),
        TicketRoute("DATA", components=("network",), rule_id="data-account"),
        TicketRoute("FIN", rule_id="team-tag"),
    ]
    problems = [str(p) for p in check_routes(jira, routes)]
    assert len(problems) == 3
    assert problems[0].startswith("project DATA (from data-account): no component 'network'")
    assert "warehouse" in problems[0]
    assert "Epic" in problems[1]
    assert problems[2].startswith("project XYZ (from team-tag): Jira cannot find it (HTTP 404)")
    assert check_routes(jira, routes[:1] + routes[4:]) == []


@pytest.fixture
def env(simulator: RunningSimulator) -> dict[str, str]:
    return {
        "RECLAIM_JIRA_URL": simulator.url,
        "RECLAIM_JIRA_EMAIL": EMAIL,
        "RECLAIM_JIRA_API_TOKEN": TOKEN,
    }


def write_facts(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


BASE = {
    "resource_id": "i-1",
    "account_id": "1",
    "kind": "vm",
    "owner": None,
    "monthly_savings": 10.0,
    "tags": {},
}


def test_the_command_passes_a_good_setup(env: dict[str, str], tmp_path: Path) -> None:
    facts = write_facts(
        tmp_path / "facts.jsonl", [BASE | {"kind": "volume"}, BASE | {"owner": "bob"}]
    )
    result = CliRunner().invoke(
        app,
        [
            "jira",
            "check",
            "--routing",
            str(EXAMPLE),
            "--default-project",
            "OPS",
            "--facts",
            str(facts),
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert "ok: 2 item(s) route to OPS" in result.output
    assert TOKEN not in result.output


def test_the_command_fails_on_an_unknown_project(env: dict[str, str], tmp_path: Path) -> None:
    facts = write_facts(tmp_path / "facts.jsonl", [BASE | {"tags": {"team": "nope"}}])
    result = CliRunner().invoke(
        app, ["jira", "check", "--routing", str(EXAMPLE), "--facts", str(facts)], env=env
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, reclaim.errors.ConfigError)
    assert "1 problem(s)" in str(result.exception)
