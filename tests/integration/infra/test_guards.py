"""What stops a stack before Terraform runs: a tracked ref not checked out, another run's lock."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reclaim.infra import InfraStore, LockHeld, Orchestrator, load_config
from reclaim.store import create_engine, upgrade

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from stacks import write_repo  # noqa: E402


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        check=True,
        capture_output=True,
    )


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_apply_skips_a_stack_whose_tracked_ref_is_not_checked_out(tmp_path: Path) -> None:
    config = write_repo(tmp_path, {"network": []})
    text = config.read_text().replace(
        '"auto_apply": false', '"auto_apply": false, "tracks": "main"'
    )
    config.write_text(text)
    _git(tmp_path, "init", "-q", "-b", "feature")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-q", "-m", "stacks")
    engine = create_engine(f"sqlite:///{tmp_path / 'reclaim.db'}")
    upgrade(engine)
    orchestrator = Orchestrator(load_config(config), engine)
    outcome = orchestrator.plan_stack("run-1", "network", "apply", True, {})
    assert outcome.status == "skipped"
    assert outcome.reason == "tracks main; the checkout is at feature"
    _git(tmp_path, "tag", "main")
    orchestrator = Orchestrator(load_config(config), engine)
    # At the tracked ref the stack proceeds to its lock and plan (a run of its own shows that).
    assert orchestrator._checkout_refs() == frozenset({"feature", "main"})


def test_a_stack_locked_by_another_run_is_not_touched(tmp_path: Path) -> None:
    config = write_repo(tmp_path, {"network": []})
    engine = create_engine(f"sqlite:///{tmp_path / 'reclaim.db'}")
    upgrade(engine)
    assert InfraStore(engine).acquire("network", "other-run", 60) is None
    orchestrator = Orchestrator(load_config(config), engine, lock_wait=0)
    with pytest.raises(LockHeld, match="stack 'network' is locked by run other-run"):
        orchestrator.plan_stack("run-1", "network", "apply", True, {})
    assert not (tmp_path / "network" / "terraform.tfstate").exists()
    assert not list((tmp_path / ".reclaim-infra").glob("runs/run-1/*.tfplan"))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "reclaim", "infra", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )


def test_cli_graph_draws_the_dag_and_refuses_a_cycle_with_both_ends(tmp_path: Path) -> None:
    config = write_repo(tmp_path, {"network": [], "app": ["network"]})
    drawn = _cli("graph", "-c", str(config), "--format", "mermaid")
    assert drawn.returncode == 0, drawn.stderr
    assert drawn.stdout == 'flowchart LR\n  s0["network"]\n  s1["app"]\n  s0 -.-> s1\n'
    write_repo(tmp_path, {"network": [], "app": ["network"]}, depends_on={"network": ["app"]})
    refused = _cli("graph", "-c", str(tmp_path))
    assert refused.returncode == 2
    assert "stacks form a cycle: network -> app -> network" in refused.stderr
    assert "network depends on app (" in refused.stderr
    assert "app reads the remote state of network (" in refused.stderr
