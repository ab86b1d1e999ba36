"""Tables at 80 columns keep ids whole; --wide puts every column on one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def run_cli(*args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1"}
    env.pop("RECLAIM_DATABASE_URL", None)
    env.pop("RECLAIM_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "reclaim", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_runs_and_recommendations_fit_80_columns_and_widen_on_request(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    assert run_cli("db", "upgrade", "--db", url).returncode == 0
    ran = run_cli("run", "--sample", "--db", url)
    assert ran.returncode == 0, ran.stderr
    run_id = ran.stdout.split("durable run ")[1].split(":")[0]

    narrow = run_cli("runs", "list", "--db", url)
    assert narrow.returncode == 0
    assert all(len(line.rstrip()) <= 80 for line in narrow.stdout.splitlines())
    assert any(line.startswith(run_id) for line in narrow.stdout.splitlines())
    wide = run_cli("runs", "list", "--wide", "--db", url)
    (row,) = [line for line in wide.stdout.splitlines() if line.startswith(run_id)]
    assert "reclaim.weekly" in row
    assert "succeeded" in row

    listed = run_cli("recommendations", "list", "-n", "200", "--db", url)
    assert all(len(line.rstrip()) <= 80 for line in listed.stdout.splitlines())
    arn = "arn:aws:rds:us-west-2:100000000007:db:db-62"
    assert arn not in listed.stdout  # folded onto two lines at 80 columns
    wide_list = run_cli("recommendations", "list", "--wide", "-n", "200", "--db", url)
    lines = [line for line in wide_list.stdout.splitlines() if arn in line]
    assert any("idle-database" in line and "100000000007" in line for line in lines)
