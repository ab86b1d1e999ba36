"""The configured schedules from the command line: `config check` tells whether they are
installed, `reclaim worker` installs them at start, `schedules list` says where each comes from.

The database side (races, edits, both backends) is in test_configured_schedules.py; this is the
wiring of the commands a user types, as a user types them (subprocesses, in the file's folder).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reclaim.cli.config import check_config
from reclaim.cli.context import CliState
from reclaim.database import create_engine
from reclaim.durable import CronExpression, DurableEngine, Schedule, Scheduler
from reclaim.pipeline import WEEKLY
from reclaim.service import WEEKLY_WORKFLOW
from reclaim.store import upgrade


def run_cli(*args: str, cwd: Path, columns: int = 200) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1"}
    env.pop("RECLAIM_DATABASE_URL", None)
    env.pop("RECLAIM_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "reclaim", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=110,
        check=False,
    )


def check(folder: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """`reclaim config check` in ``folder`` (in this process: its lines, and no problem)."""
    monkeypatch.chdir(folder)
    monkeypatch.delenv("RECLAIM_DATABASE_URL", raising=False)
    monkeypatch.delenv("RECLAIM_CONFIG", raising=False)
    lines: list[str] = []
    problems = check_config(CliState(), None, report=lambda text, **_: lines.append(text))
    assert problems == 0, lines
    return "\n".join(lines)


def test_worker_installs_the_file_s_schedules_and_the_commands_show_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "reclaim.yaml").write_text(
        "database:\n  url: sqlite:///state.db\n"
        "sources:\n  sample: true\n"
        "rules:\n  default_project: OPS\n"
        "schedules:\n"
        '  - name: weekly\n    cron: "0 6 * * MON"\n'
        '  - name: month-end\n    cron: "0 22 28 * *"\n    timezone: Europe/Paris\n',
        encoding="utf-8",
    )
    engine = create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    upgrade(engine)
    Scheduler(DurableEngine(engine)).add(
        Schedule("by-hand", CronExpression("0 0 1 * *"), WEEKLY.name, {"sample": True})
    )

    before = check(tmp_path, monkeypatch)
    assert "schedule weekly: '0 6 * * MON' UTC, next " in before
    assert "not installed yet: `reclaim serve` or `reclaim worker` installs it" in before

    worker = run_cli("worker", "--until-idle", "--poll", "0.05", cwd=tmp_path)
    assert worker.returncode == 0, worker.stderr
    assert "schedule weekly: added ('0 6 * * MON' UTC)" in worker.stderr
    assert "schedule month-end: added ('0 22 28 * *' Europe/Paris)" in worker.stderr
    stored = {item.name: item for item in Scheduler(DurableEngine(engine)).all()}
    assert sorted(stored) == ["by-hand", "month-end", "weekly"]
    assert stored["month-end"].cron == CronExpression("0 22 28 * *", "Europe/Paris")
    engine.dispose()

    after = check(tmp_path, monkeypatch)
    assert "schedule weekly: '0 6 * * MON' UTC, next " in after
    assert after.count("; installed") == 2, after

    narrow = run_cli("schedules", "list", cwd=tmp_path, columns=80)
    assert narrow.returncode == 0, narrow.stderr
    lines = narrow.stdout.splitlines()
    assert all(len(line.rstrip()) <= 80 for line in lines), narrow.stdout
    origin = {line.split()[0]: line.split()[-1] for line in lines[1:] if line.strip()}
    assert origin["weekly"] == "reclaim.yaml"
    assert origin["month-end"] == "reclaim.yaml"
    wide = run_cli("schedules", "list", "--wide", cwd=tmp_path)
    (by_hand,) = [line for line in wide.stdout.splitlines() if line.startswith("by-hand")]
    assert "by hand" in by_hand
    assert WEEKLY_WORKFLOW in by_hand
    (weekly,) = [line for line in wide.stdout.splitlines() if line.startswith("weekly")]
    assert str((tmp_path / "reclaim.yaml").resolve()) in weekly

    removed = run_cli("schedules", "remove", "weekly", cwd=tmp_path)
    assert removed.returncode == 0, removed.stderr
    assert "installs it again" in removed.stderr
