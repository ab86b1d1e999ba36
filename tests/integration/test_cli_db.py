"""The command line, run as a user runs it: a subprocess with its exit code and output."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from reclaim.database import create_engine
from reclaim.store import migration_status


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "reclaim", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
        check=False,
    )


def _url_for_cli(database_url: tuple[str, str | None]) -> str:
    url, schema = database_url
    # The CLI has no schema option; PostgreSQL reads the schema from the URL's options.
    return url if schema is None else f"{url}?options=-csearch_path%3D{schema}"


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("reclaim ")


def test_help_lists_commands() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "db" in result.stdout
    assert "demo" in result.stdout


def test_db_upgrade_then_status(database_url: tuple[str, str | None]) -> None:
    cli_url = _url_for_cli(database_url)
    before = run_cli("--db", cli_url, "db", "status")
    assert before.returncode == 3, before.stderr
    assert "pending" in before.stdout

    upgraded = run_cli("--db", cli_url, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "applied" in upgraded.stdout

    again = run_cli("--db", cli_url, "db", "upgrade")
    assert again.returncode == 0
    assert "already up to date" in again.stdout

    after = run_cli("--db", cli_url, "db", "status")
    assert after.returncode == 0
    assert "up to date" in after.stdout

    url, schema = database_url
    engine = create_engine(url, schema=schema)
    assert migration_status(engine).up_to_date
    engine.dispose()


def test_database_url_from_environment(tmp_path: pytest.TempPathFactory) -> None:
    url = f"sqlite:///{tmp_path}/env.db"
    result = run_cli("db", "upgrade", env={"RECLAIM_DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    assert "env.db" in result.stdout


def test_errors_are_one_line_without_traceback() -> None:
    result = run_cli("--db", "mysql://root@localhost/x", "db", "status")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: unsupported database 'mysql'")
    assert "Traceback" not in result.stderr


def test_unreachable_database_is_one_line() -> None:
    result = run_cli("--db", "postgresql://nobody@127.0.0.1:1/none", "db", "upgrade")
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot connect to the database")
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback() -> None:
    result = run_cli("--debug", "--db", "mysql://root@localhost/x", "db", "status")
    assert result.returncode == 2
    assert "Traceback" in result.stderr
