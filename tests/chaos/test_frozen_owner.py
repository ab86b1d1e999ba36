"""SIGSTOP a worker at random kill points on PostgreSQL: another takes over within lease + poll.

A worker frozen inside a transaction (between a checkpoint's INSERT and its COMMIT, inside a
claim, an item save, a side effect) keeps its row locks while it is frozen, and a claim with
``SKIP LOCKED`` skips a locked run. The engine's sessions end a transaction left idle for a
lease (``reclaim.durable.sessions``), so the takeover must come within a lease plus one poll
of the freeze whatever the frozen process was doing. For each chosen point (half of them in
the middle of a commit, the rest anywhere; drawn from a fixed seed) a worker process stops
itself there, a second worker is started, and the test measures how long the second one took
to claim the run; then it kills the frozen one and checks the books as the SIGKILL sweep does:
the run succeeded with the right result and every keyed side effect exists exactly once.

``RECLAIM_CHAOS_STOPS=N`` sets how many points (default 4 per mode; the long version is
``RECLAIM_CHAOS_STOPS=40``).
"""

from __future__ import annotations

import os
import random
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from reclaim.database import create_engine
from reclaim.durable import DurableEngine, RunStatus, Store
from reclaim.durable.worker import Worker

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import chaosflow  # noqa: E402

LEASE = 1.0
POLL = 0.05
# Starting the successor process and scheduling on a loaded shared machine; without the
# sessions' idle limit a stop inside a transaction is never taken over at all.
SLACK = 1.5
STOPS = int(os.environ.get("RECLAIM_CHAOS_STOPS", "4"))


def _spawn(body: Callable[[], None]) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            watchdog = threading.Timer(60, lambda: os._exit(4))
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


def _worker(
    url: str, schema: str | None, log: Path, stop_at: int | None, distribute: bool
) -> Worker:
    os.environ[chaosflow.SIGNAL_ENV] = "STOP"
    if stop_at is None:
        os.environ.pop(chaosflow.KILL_AT_ENV, None)
    else:
        os.environ[chaosflow.KILL_AT_ENV] = str(stop_at)
    engine = create_engine(url, schema=schema)
    switch = chaosflow.KillSwitch.from_env()
    switch.install(engine)
    chaosflow.bind(engine, str(log), switch)
    durable = DurableEngine(
        engine, workflows=[chaosflow.workflow], lease_seconds=LEASE, distribute_items=distribute
    )
    return Worker(durable, poll_interval=POLL, schedules=False, workflows=["chaos"])


def _effects(engine: Engine, run_id: str) -> dict[str, int]:
    table = chaosflow.effects
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(table.c.key, table.c.value).where(table.c.run_id == run_id)
        ).all()
    return {str(key): int(value) for key, value in rows}


@pytest.mark.slow
@pytest.mark.parametrize("distribute", [False, True], ids=["owner-runs-items", "queued-items"])
def test_a_worker_frozen_anywhere_is_taken_over_within_lease_and_poll(
    engine: Engine, database_url: tuple[str, str | None], tmp_path: Path, distribute: bool
) -> None:
    url, schema = database_url
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite has one writer: a process frozen holding it blocks the file")
    store = Store(engine)
    store.ensure_schema()
    chaosflow.tables.create_all(engine)
    durable = DurableEngine(store, workflows=[chaosflow.workflow])

    probe_log = tmp_path / "probe.log"
    labels_file = tmp_path / "labels"
    run_id = durable.start(chaosflow.workflow, None)
    engine.dispose()

    def probe() -> None:
        worker = _worker(url, schema, probe_log, None, distribute)
        worker.run(until_idle=True)
        labels_file.write_text("\n".join(chaosflow.Harness.switch.labels))

    assert _exit_code(_spawn(probe)) == 0
    assert durable.result(run_id) == chaosflow.expected_total(run_id)
    labels = labels_file.read_text().splitlines()
    commits = [n for n, label in enumerate(labels, 1) if label == "before-commit"]
    others = [n for n, label in enumerate(labels, 1) if label != "before-commit"]
    rng = random.Random(8)
    half = min(STOPS // 2, len(commits))
    points = sorted(rng.sample(commits, half) + rng.sample(others, STOPS - half))

    takeovers: list[float] = []
    for point in points:
        where = f"stop at point {point} ({labels[point - 1]})"
        run_id = durable.start(chaosflow.workflow, None)
        log = tmp_path / f"stop-{point}.log"
        engine.dispose()
        victim = _spawn(
            lambda log=log, point=point: _worker(url, schema, log, point, distribute).run(
                until_idle=True
            )
        )
        _, status = os.waitpid(victim, os.WUNTRACED)
        if distribute and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            # Queued items are saved in batches whose size depends on timing: this run
            # passed fewer points than the probe and finished before reaching this one.
            assert point > len(labels) - 10, f"{where}: the worker did not stop"
            assert durable.get_run(run_id).status is RunStatus.SUCCEEDED, where
            continue
        assert os.WIFSTOPPED(status), f"{where}: the worker did not stop ({status})"
        frozen_at = time.monotonic()
        before = durable.get_run(run_id)
        try:
            if before.status is not RunStatus.SUCCEEDED:  # not stopped after its last commit
                successor = _spawn(
                    lambda log=log: _worker(url, schema, log, None, distribute).run(max_runs=1)
                )
                deadline = frozen_at + LEASE + POLL + SLACK + 10
                while durable.get_run(run_id).fencing_token == before.fencing_token:
                    assert time.monotonic() < deadline, f"{where}: never taken over"
                    time.sleep(0.01)
                takeovers.append(time.monotonic() - frozen_at)
                assert _exit_code(successor) == 0, f"{where}: the successor failed"
        finally:
            os.kill(victim, signal.SIGKILL)
            _exit_code(victim)
        run = durable.get_run(run_id)
        assert run.status is RunStatus.SUCCEEDED, f"{where}: run is {run.status}"
        assert durable.result(run_id) == chaosflow.expected_total(run_id), where
        effects = _effects(engine, run_id)
        assert sorted(effects) == sorted(chaosflow.expected_keys(run_id)), where
        assert all(value == chaosflow.value_of(key) for key, value in effects.items()), where
    print(
        f"{len(points)} stops of {len(labels)} points; takeover after "
        f"{', '.join(f'{t:.2f}' for t in takeovers)} s (lease {LEASE} s, poll {POLL} s)"
    )
    assert takeovers
    assert max(takeovers) <= LEASE + POLL + SLACK, takeovers
