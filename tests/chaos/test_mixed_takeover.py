"""A run's owner dies while another worker helps with its map items; the run is taken over.

PostgreSQL, real processes: worker W1 owns a run whose map items are queued, worker W2 helps
with them. W1 is SIGKILLed in the middle of the map step while W2 holds items, and the run is
taken over — by ``reclaim runs resume`` (the documented command, a new process that takes the
run at once because its owner is a dead local process), by another worker after the lease, or
by an embedded ``DurableEngine.run`` with no item distribution of its own. W2 keeps helping
throughout. Checked each time: the run succeeds, every keyed side effect exists once, no item
that had finished before the kill ran again, and no item ran in two live processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from reclaim.database import create_engine
from reclaim.durable import DurableEngine, RunStatus, StepStatus, Store
from reclaim.durable.worker import Worker

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import mixedflow  # noqa: E402

LEASE = 2.0


def _spawn(body: Callable[[], None]) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            watchdog = threading.Timer(120, lambda: os._exit(4))
            watchdog.daemon = True
            watchdog.start()
            body()
        except BaseException:
            traceback.print_exc()
            code = 3
        finally:
            os._exit(code)
    return pid


def _exit_code(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _engine(
    url: str, schema: str | None, *, distribute: bool, lease: float = LEASE
) -> DurableEngine:
    return DurableEngine(
        create_engine(url, schema=schema),
        workflows=[mixedflow.workflow],
        lease_seconds=lease,
        distribute_items=distribute,
    )


def _worker(url: str, schema: str | None, stop: Path, lease: float = LEASE) -> None:
    worker = Worker(
        _engine(url, schema, distribute=True, lease=lease),
        poll_interval=0.05,
        schedules=False,
        workflows=[mixedflow.workflow.name],
    )
    threading.Thread(target=lambda: _stop_when(stop, worker), daemon=True).start()
    worker.run()


def _stop_when(flag: Path, worker: Worker) -> None:
    while not flag.exists():
        time.sleep(0.02)
    worker.stop()


def _executions(log: Path) -> list[tuple[int, float, str]]:
    if not log.exists():
        return []
    rows = []
    for line in log.read_text().splitlines():
        pid, at, key = line.split(" ", 2)
        rows.append((int(pid), float(at), key))
    return rows


def _wait(condition: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.mark.slow
@pytest.mark.parametrize("resumer", ["runs-resume", "worker", "embedded"])
def test_owner_killed_while_a_helper_works_items_then_taken_over(
    engine: Engine, database_url: tuple[str, str | None], tmp_path: Path, resumer: str
) -> None:
    url, schema = database_url
    if engine.dialect.name == "sqlite":
        pytest.skip("map items are shared between worker processes on PostgreSQL")
    store = Store(engine)
    store.ensure_schema()
    mixedflow.tables.create_all(engine)
    log = tmp_path / "executions.log"
    os.environ[mixedflow.LOG_ENV] = str(log)
    stop = tmp_path / "stop"
    durable = DurableEngine(store, workflows=[mixedflow.workflow])
    run_id = durable.start(mixedflow.workflow)
    engine.dispose()

    # Taken over by a new process on this host, the run need not wait for the dead owner's
    # lease, nor its items for theirs: a long lease keeps the helper from claiming the run
    # before the (slow to start) command gets to it.
    owner_lease = LEASE if resumer == "worker" else 60.0
    owner = _spawn(lambda: _worker(url, schema, stop, owner_lease))
    _wait(lambda: durable.get_run(run_id).status is RunStatus.RUNNING, "the owner's claim")
    engine.dispose()  # forked children must not share our pooled connections
    helper = _spawn(lambda: _worker(url, schema, stop))
    others: list[int] = []
    try:

        def helper_holds_items() -> bool:
            ran = Counter(pid for pid, _, _ in _executions(log))
            return ran[helper] >= 2 and ran[owner] >= 2

        _wait(helper_holds_items, "both workers to run items")
        done_before = {
            f"{run_id}/{s.step}/{s.item_key}"
            for s in store.load_steps(run_id)
            if s.item_key and s.status is StepStatus.SUCCEEDED
        }
        os.kill(owner, signal.SIGKILL)
        killed_at = time.time()
        assert _exit_code(owner) == -signal.SIGKILL
        assert len(done_before) < len(mixedflow.ITEMS), "the map step finished before the kill"

        if resumer == "runs-resume":
            cli_url = url if not schema else f"{url}?options={quote(f'-csearch_path={schema}')}"
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
            resumed = subprocess.run(
                [
                    *(sys.executable, "-m", "reclaim", "--db", cli_url),
                    *("runs", "resume", run_id, "--module", "mixedflow"),
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert resumed.returncode == 0, resumed.stderr + resumed.stdout
        elif resumer == "worker":
            engine.dispose()
            others.append(_spawn(lambda: _worker(url, schema, stop)))
        else:
            engine.dispose()
            embedded = _spawn(lambda: _engine(url, schema, distribute=False).run(run_id))
            assert _exit_code(embedded) == 0, "the embedded takeover failed"
        _wait(lambda: durable.get_run(run_id).status is RunStatus.SUCCEEDED, "the run to finish")
    finally:
        stop.write_text("")
        for pid in [helper, *others]:
            assert _exit_code(pid) == 0, f"worker {pid} failed"

    assert durable.result(run_id) == len(mixedflow.ITEMS)
    keys = [f"{run_id}/work/{item}" for item in mixedflow.ITEMS]
    with engine.connect() as connection:
        stored = connection.execute(sa.select(mixedflow.effects.c.key)).scalars().all()
    assert sorted(stored) == sorted(keys), "a keyed side effect is missing or extra"
    executions = _executions(log)
    live = Counter(key for pid, _, key in executions if pid != owner)
    twice = sorted(key for key, n in live.items() if n > 1)
    assert not twice, f"items run twice by live processes: {twice}"
    again = sorted(key for _, at, key in executions if key in done_before and at > killed_at)
    assert not again, f"finished items ran again after the kill: {again}"
    assert all(key in {k for _, _, k in executions} for key in keys)
