"""``reclaim init`` and ``reclaim config check``, run as a user runs them (a subprocess).

`config check` validates the file, then reaches what it names: files, rule files, the
database, and Jira (here the simulator on a real port). One line per problem, exit 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reclaim.cli.app import hoist_global_options
from reclaim.database import create_engine
from reclaim.store import upgrade
from reclaim.tickets.simulator import RunningSimulator, SimulatorApp, run_in_thread

SECRET = "super-secret-token-7f3a"


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    full_env.pop("RECLAIM_DATABASE_URL", None)
    full_env.pop("RECLAIM_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "reclaim", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=110,
        check=False,
    )


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    with run_in_thread(SimulatorApp()) as running:
        yield running


def test_init_writes_a_file_that_checks_clean_once_the_database_exists(tmp_path: Path) -> None:
    written = run_cli("init", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    assert (tmp_path / "reclaim.yaml").read_text(encoding="utf-8").startswith("# reclaim.yaml")
    again = run_cli("init", cwd=tmp_path)
    assert again.returncode == 2
    assert "already exists; pass --force" in again.stderr

    before = run_cli("config", "check", cwd=tmp_path)
    assert before.returncode == 1
    assert "migration(s) pending; run `reclaim db upgrade`" in before.stdout
    upgrade(create_engine(f"sqlite:///{tmp_path / 'reclaim.db'}"))
    after = run_cli("config", "check", cwd=tmp_path)
    assert after.returncode == 0, after.stdout
    assert "✓ database: sqlite:///" in after.stdout
    assert "configuration OK" in after.stdout


def test_check_reaches_jira_and_reports_each_problem_on_its_line(
    tmp_path: Path, sim: RunningSimulator
) -> None:
    config = tmp_path / "reclaim.yaml"
    config.write_text(
        "database:\n  url: sqlite:///state.db\n"
        "sources:\n  billing: [missing-focus/]\n"
        "rules:\n  routing: routing.yaml\n"
        f"jira:\n  url: {sim.url}\n  email: bot@example.com\n  api_token_env: TEST_JIRA_TOKEN\n",
        encoding="utf-8",
    )
    (tmp_path / "routing.yaml").write_text("kind: routing\nrules: [\n", encoding="utf-8")
    upgrade(create_engine(f"sqlite:///{tmp_path / 'state.db'}"))
    result = run_cli(
        "config",
        "check",
        "--config",
        str(config),
        cwd=tmp_path,
        env={"TEST_JIRA_TOKEN": SECRET},
    )
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith("✗ sources.billing:") and "missing-focus" in line for line in lines)
    assert any(
        line.startswith("✗ routing and templates:") and "routing.yaml:" in line for line in lines
    )
    assert any(line.startswith("✓ jira:") and "reached: Jira Cloud" in line for line in lines)
    assert any(line.startswith("✓ database:") for line in lines)
    assert "2 problem(s)" in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_check_lists_every_problem_of_an_invalid_file(tmp_path: Path) -> None:
    (tmp_path / "reclaim.yaml").write_text(
        "sources:\n  biling: []\nsnooze:\n  wont_do_days: -1\n", encoding="utf-8"
    )
    result = run_cli("config", "check", cwd=tmp_path)
    assert result.returncode == 1
    problems = [line for line in result.stdout.splitlines() if line.startswith("✗")]
    assert problems == [
        "✗ reclaim.yaml:2:3: unknown key 'sources.biling'; did you mean 'billing'?",
        "✗ reclaim.yaml:4:17: snooze.wont_do_days: Input should be greater than or equal to 1;"
        " use a larger number",
    ]


def test_an_unset_token_is_a_problem_not_a_crash(tmp_path: Path, sim: RunningSimulator) -> None:
    (tmp_path / "reclaim.yaml").write_text(
        "database:\n  url: sqlite:///s.db\nsources:\n  sample: true\n"
        f"jira:\n  url: {sim.url}\n  email: a@b.c\n  api_token_env: UNSET_TOKEN_VAR\n",
        encoding="utf-8",
    )
    upgrade(create_engine(f"sqlite:///{tmp_path / 's.db'}"))
    result = run_cli("config", "check", cwd=tmp_path)
    assert result.returncode == 1
    assert "✗ jira: jira.api_token_env names UNSET_TOKEN_VAR, which is not set" in result.stdout


def test_db_after_the_sub_command_is_moved_to_the_root() -> None:
    assert hoist_global_options(["runs", "list", "--db", "sqlite:///x.db"]) == [
        "--db",
        "sqlite:///x.db",
        "runs",
        "list",
    ]
    assert hoist_global_options(["--db=sqlite:///y.db", "db", "upgrade"]) == [
        "--db=sqlite:///y.db",
        "db",
        "upgrade",
    ]
    assert hoist_global_options(["runs", "show", "--", "--db"]) == ["runs", "show", "--", "--db"]


def test_db_after_the_sub_command_works(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'late.db'}"
    result = run_cli("db", "upgrade", "--db", url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "late.db").exists()
