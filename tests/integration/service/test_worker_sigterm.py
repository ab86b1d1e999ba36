"""``reclaim worker`` and SIGTERM: the work it held is handed back at once, not after its lease.

Leases here are 120 s, far longer than the test waits, so the only way another worker can take
over is the hand-back. After a SIGTERM the database must show no run and no map item still
owned by the stopped worker, and the finished work must be exactly every item once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from reclaim.durable import DurableEngine, RunStatus
from reclaim.durable.schema import runs, steps
from reclaim.store import upgrade

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import service_worker_flows as flows  # noqa: E402

Proc = subprocess.Popen[bytes]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Pool:
    def __init__(self, url: str, tmp: Path) -> None:
        self.url = url
        self.tmp = tmp
        self.log = tmp / "items.log"
        self.procs: list[Proc] = []

    def start(self, *extra: str, item_seconds: float | None = None) -> Proc:
        """A worker; ``item_seconds`` overrides how long each of its items sleeps."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
        env[flows.LOG_ENV] = str(self.log)
        if item_seconds is not None:
            env[flows.SECONDS_ENV] = str(item_seconds)
        command = [sys.executable, "-m", "reclaim", "--db", self.url, "worker"]
        command += ["--module", "service_worker_flows", "--poll", "0.05", "--no-schedules"]
        command += ["--lease", "120", "--distribute-items", *extra]
        with open(self.tmp / f"worker-{len(self.procs)}.err", "wb") as errors:
            proc = subprocess.Popen(command, env=env, stderr=errors)
        self.procs.append(proc)
        return proc

    def stderr(self, proc: Proc) -> str:
        return (self.tmp / f"worker-{self.procs.index(proc)}.err").read_text()

    def done(self) -> list[tuple[int, str]]:
        if not self.log.exists():
            return []
        lines = self.log.read_text().splitlines()
        return [(int(pid), item) for pid, item in (line.split(" ", 1) for line in lines)]

    def by(self, proc: Proc) -> list[str]:
        return [item for pid, item in self.done() if pid == proc.pid]

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def pool(database_url: tuple[str, str | None], tmp_path: Path) -> Iterator[Pool]:
    url, schema = database_url
    cli_url = url if not schema else f"{url}?options={quote(f'-csearch_path={schema}')}"
    workers = Pool(cli_url, tmp_path)
    try:
        yield workers
    finally:
        workers.close()


def _held_by(engine: Engine, proc: Proc) -> list[str]:
    """Runs and items whose owner is ``proc`` (worker ids read ``host/pid/random``)."""
    pattern = f"{socket.gethostname()}/{proc.pid}/%"
    with engine.connect() as connection:
        owned_runs = connection.execute(
            sa.select(runs.c.id).where(runs.c.owner.like(pattern))
        ).scalars()
        owned_items = connection.execute(
            sa.select(steps.c.item_key).where(steps.c.owner.like(pattern))
        ).scalars()
        return [*owned_runs, *owned_items]


@pytest.mark.timeout(400)
def test_sigterm_hands_runs_and_items_back_at_once(engine: Engine, pool: Pool) -> None:
    upgrade(engine)
    durable = DurableEngine(engine, workflows=[flows.fanout])
    run_id = durable.start(flows.fanout, {"seconds": 0.5})

    port = _free_port()
    owner = pool.start("--metrics-port", str(port), "--metrics-host", "127.0.0.1")
    _wait(lambda: len(pool.by(owner)) >= 2, "the owner to finish two items")
    helper = pool.start("--item-concurrency", "2")
    _wait(lambda: len(pool.by(helper)) >= 1, "the helper to finish an item")

    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert 'reclaim_worker_runs_total{outcome="claimed",worker="' in metrics
    claimed = [line for line in metrics.splitlines() if 'outcome="claimed"' in line]
    assert claimed[0].endswith(" 1.0")

    helper.send_signal(signal.SIGTERM)
    assert helper.wait(timeout=60) == 0, pool.stderr(helper)
    assert _held_by(engine, helper) == []

    owner.send_signal(signal.SIGTERM)
    assert owner.wait(timeout=60) == 0, pool.stderr(owner)
    assert _held_by(engine, owner) == []
    assert "handed back run" in pool.stderr(owner)
    run = durable.get_run(run_id)
    assert run.status is RunStatus.PENDING
    assert run.owner is None
    remaining = flows.ITEMS - len(pool.done())
    assert remaining > 0, "the run finished before it could be stopped; make items slower"

    # With a 120 s lease still unexpired, a new worker can only go on because of the hand-back.
    # Its items are quick: the step runs two at a time, and what is left would take
    # remaining x 0.5 s / 2 (some 20 s) at the stopped workers' pace.
    finisher = pool.start("--until-idle", "--item-concurrency", "16", item_seconds=0.01)
    assert finisher.wait(timeout=120) == 0, pool.stderr(finisher)
    assert durable.get_run(run_id).status is RunStatus.SUCCEEDED
    ran = Counter(item for _, item in pool.done())
    assert sorted(ran) == [f"item-{n:03d}" for n in range(flows.ITEMS)]
    assert set(ran.values()) == {1}, ran
    assert len(pool.by(finisher)) == remaining
