"""``reclaim worker`` processes on one database: takeover, fencing, graceful stop, dead runs.

Every worker here is a real ``python -m reclaim worker`` process; the tests pause, kill and
signal them as an operator or a crash would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy.engine import Engine

from reclaim.durable import DurableEngine, RunStatus, StepStatus, Store

HERE = Path(__file__).resolve().parent
Proc = subprocess.Popen[bytes]
sys.path.insert(0, str(HERE))
import durable_worker_flows as flows  # noqa: E402


def _cli_url(url: str, schema: str | None) -> str:
    return url if not schema else f"{url}?options={quote(f'-csearch_path={schema}')}"


class Workers:
    """Starts worker processes on the test's database and reads what they did."""

    def __init__(self, url: str, schema: str | None, tmp: Path) -> None:
        self.url = _cli_url(url, schema)
        self.tmp = tmp
        self.log = tmp / "executions.log"
        self.procs: list[Proc] = []

    def start(self, lease: float, *, until_idle: bool = False, cli: bool = False) -> Proc:
        """A worker process: ``worker_main.py``, or the real ``reclaim worker`` with ``cli``."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
        env[flows.LOG_ENV] = str(self.log)
        if cli:
            command = [sys.executable, "-m", "reclaim", "--db", self.url, "worker"]
            command += ["--module", "durable_worker_flows", "--poll", "0.05", "--no-schedules"]
            command += ["--lease", str(lease)]
        else:
            command = [sys.executable, str(HERE / "worker_main.py"), self.url, str(lease)]
        args = ["--until-idle"] if until_idle else []
        with open(self.tmp / f"worker-{len(self.procs)}.err", "wb") as errors:
            proc = subprocess.Popen([*command, *args], env=env, stderr=errors)
        self.procs.append(proc)
        return proc

    def pause(self, proc: Proc) -> None:
        """SIGSTOP ``proc``; on SQLite, only at a moment it holds no lock on the file.

        A process stopped inside a SQLite write transaction blocks every other process until
        it resumes (SQLite has one writer and no lock timeout on the holder), so a takeover is
        impossible then; docs/workers.md says so. On PostgreSQL the server ends a session left
        idle in a transaction for a lease (``reclaim.durable.sessions``).
        """
        while True:
            os.kill(proc.pid, signal.SIGSTOP)
            if not self.url.startswith("sqlite"):
                return
            path = self.url.removeprefix("sqlite:///")
            try:
                with contextlib.closing(sqlite3.connect(path, timeout=0.5)) as probe:
                    probe.execute("BEGIN IMMEDIATE")
                    probe.rollback()
                return
            except sqlite3.OperationalError:
                os.kill(proc.pid, signal.SIGCONT)
                time.sleep(0.01)

    def stderr(self, proc: Proc) -> str:
        return (self.tmp / f"worker-{self.procs.index(proc)}.err").read_text()

    def executions(self) -> list[tuple[int, str]]:
        if not self.log.exists():
            return []
        return [
            (int(pid), what)
            for pid, what in (line.split(" ", 1) for line in self.log.read_text().splitlines())
        ]

    def ran(self, proc: Proc) -> list[str]:
        return [what for pid, what in self.executions() if pid == proc.pid]

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
                proc.wait()


@pytest.fixture
def workers(database_url: tuple[str, str | None], tmp_path: Path) -> Iterator[Workers]:
    url, schema = database_url
    pool = Workers(url, schema, tmp_path)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def durable(engine: Engine) -> DurableEngine:
    store = Store(engine)
    store.ensure_schema()
    return DurableEngine(store, workflows=[flows.slow, flows.doomed])


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def outputs(durable: DurableEngine, run_id: str) -> dict[str, str | None]:
    return {step.step: step.output for step in durable.steps(run_id)}


def test_a_paused_worker_cannot_overwrite_the_new_owner(
    durable: DurableEngine, workers: Workers
) -> None:
    run_id = durable.start(flows.slow, {"seconds": 1.0})
    paused = workers.start(1)
    wait_for(lambda: "s2 start" in workers.ran(paused), "the first worker to start s2")
    workers.pause(paused)
    time.sleep(1.5)  # past the paused worker's lease

    successor = workers.start(1)
    wait_for(lambda: durable.get_run(run_id).status is RunStatus.SUCCEEDED, "the takeover")
    os.kill(paused.pid, signal.SIGCONT)
    wait_for(lambda: "lost run" in workers.stderr(paused), "the paused worker to notice")

    for proc in (paused, successor):
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    # The paused worker finished its step body, but its checkpoint was refused: the stored
    # outputs are the new owner's, and the paused worker started nothing after waking.
    stored = outputs(durable, run_id)
    assert stored["s1"] == str(paused.pid)
    assert stored["s2"] == stored["s3"] == stored["s4"] == str(successor.pid)
    assert workers.ran(paused) == ["s1 start", "s1 end", "s2 start", "s2 end"]
    assert [w for w in workers.ran(successor) if w.endswith("start")] == [
        "s2 start",
        "s3 start",
        "s4 start",
    ]
    assert durable.get_run(run_id).fencing_token >= 2


def test_a_dead_workers_run_is_resumed_by_another_after_its_lease(
    durable: DurableEngine, workers: Workers
) -> None:
    run_id = durable.start(flows.slow, {"seconds": 0.3})
    doomed = workers.start(1)
    wait_for(lambda: "s2 start" in workers.ran(doomed), "the first worker to start s2")
    standby = workers.start(1)
    doomed.kill()
    doomed.wait()

    wait_for(lambda: durable.get_run(run_id).status is RunStatus.SUCCEEDED, "the takeover")
    standby.send_signal(signal.SIGTERM)
    assert standby.wait(timeout=30) == 0
    assert [w for w in workers.ran(standby) if w.endswith("start")] == [
        "s2 start",
        "s3 start",
        "s4 start",
    ]
    run = durable.get_run(run_id)
    assert run.attempts == 2
    assert outputs(durable, run_id)["s1"] == str(doomed.pid)


def test_sigterm_finishes_the_current_step_and_hands_the_run_back(
    durable: DurableEngine, workers: Workers
) -> None:
    run_id = durable.start(flows.slow, {"seconds": 0.5})
    # A long lease: the run can only move on promptly if the worker really hands it back.
    stopping = workers.start(60, cli=True)
    wait_for(lambda: "s2 start" in workers.ran(stopping), "the worker to start s2")
    stopping.send_signal(signal.SIGTERM)
    assert stopping.wait(timeout=30) == 0
    assert workers.ran(stopping) == ["s1 start", "s1 end", "s2 start", "s2 end"]
    run = durable.get_run(run_id)
    assert run.status is RunStatus.PENDING
    assert run.owner is None
    steps = {step.step: step for step in durable.steps(run_id)}
    assert steps["s2"].status is StepStatus.SUCCEEDED
    assert "handed back run" in workers.stderr(stopping)

    finisher = workers.start(60, until_idle=True)
    assert finisher.wait(timeout=60) == 0
    assert durable.get_run(run_id).status is RunStatus.SUCCEEDED
    assert workers.ran(finisher) == ["s3 start", "s3 end", "s4 start", "s4 end"]


def test_a_run_that_keeps_killing_its_workers_goes_dead(
    durable: DurableEngine, workers: Workers
) -> None:
    run_id = durable.start(flows.doomed, None)
    deadline = time.monotonic() + 60
    exits = []
    while durable.get_run(run_id).status is not RunStatus.DEAD:
        assert time.monotonic() < deadline, f"never went dead: {durable.get_run(run_id)}"
        exits.append(workers.start(0.3, until_idle=True).wait(timeout=30))
        time.sleep(0.1)
    run = durable.get_run(run_id)
    crashes = [what for _, what in workers.executions() if what == "crash"]
    assert len(crashes) == flows.doomed.max_attempts == run.attempts == 3
    assert exits.count(-signal.SIGKILL) == 3
    assert run.error is not None
    assert "claimed 3 time(s)" in run.error
    # A dead run is not claimed again: a further worker finds nothing and exits.
    assert workers.start(0.3, until_idle=True).wait(timeout=30) == 0
    assert len([w for _, w in workers.executions() if w == "crash"]) == 3
