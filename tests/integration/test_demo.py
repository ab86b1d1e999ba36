"""``reclaim demo`` tells the whole story, as a new user sees it: a subprocess on a fresh home."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_demo_goes_from_found_to_realized_and_writes_a_report(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1", "XDG_DATA_HOME": str(tmp_path)}
    env.pop("RECLAIM_DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "reclaim", "demo"],
        capture_output=True,
        text=True,
        env=env,
        timeout=540,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for chapter in ("week 1:", "between the weeks:", "week 2:", "week 3:", "the loop:"):
        assert chapter in out
    created = int(re.search(r"tickets\s+(\d+) created in Jira", out).group(1))  # type: ignore[union-attr]
    found = int(re.search(r"evaluate\s+(\d+) savings found", out).group(1))  # type: ignore[union-attr]
    assert 0 < created < found  # several rules match some resources: one ticket each
    alternatives = re.search(r"(\d+) more savings are alternatives", " ".join(out.split()))
    assert alternatives is not None
    assert int(alternatives.group(1)) == found - created
    done = int(re.search(r"people\s+(\d+) done", out).group(1))  # type: ignore[union-attr]
    synced = re.search(r"sync back\s+\d+ tickets read back from Jira:\s+(\d+) done", out)
    assert synced is not None
    assert int(synced.group(1)) == done
    assert re.search(r"(\d+) reopened \(done, but the waste", out)
    written = re.search(r"write back (\d+) tickets reopened with a comment", " ".join(out.split()))
    assert written is not None
    assert int(written.group(1)) > 0
    assert re.search(r"\d+ new; no ticket was created twice", out)
    realized = re.search(r"realized\s+(\d+) implemented savings measured", out)
    assert realized is not None
    assert int(realized.group(1)) > 0
    report = tmp_path / "reclaim" / "demo" / "report.html"
    assert f"report  {report}" in out.replace("\n", "")
    html = report.read_text(encoding="utf-8")
    assert "found to realized" in html
    assert "<script" not in html
    assert "http" not in html
    # A second demo starts fresh: the same story, not doubled figures.
    again = subprocess.run(
        [sys.executable, "-m", "reclaim", "demo"],
        capture_output=True,
        text=True,
        env=env,
        timeout=540,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert f"{found} savings found" in again.stdout
