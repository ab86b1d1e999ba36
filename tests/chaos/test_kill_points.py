"""SIGKILL a worker at every kill point of a run, resume it in a new process, check the books.

For each backend the suite first runs the workflow once without a kill and counts its kill
points (see ``chaosflow``): every SQL statement, both sides of every COMMIT (so the middle of
each checkpoint transaction and the moment just after it landed), and both step boundaries. It
then starts one run per kill point, lets a worker process die by SIGKILL exactly there, and
resumes the run in a fresh process — alternately a second worker that waits out the dead one's
lease, and ``DurableEngine.run`` which takes over a run whose owner process is gone. After each
resume it checks that:

- the run succeeded with the right result, and no step or item is missing (none lost);
- no step or item that had a completed checkpoint at the kill ran again (none ran twice);
- every keyed side effect exists exactly once, with the value its step computed.

Processes are forked from the test process (the same code, already imported), which keeps a
full sweep near a second per kill point. ``RECLAIM_CHAOS_STRIDE=N`` tests every N-th point
(default 1: all of them).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from reclaim.database import create_engine
from reclaim.durable import DurableEngine, RunStatus, StepStatus, Store
from reclaim.durable.worker import Worker

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import chaosflow  # noqa: E402

LEASE = 0.3
STRIDE = int(os.environ.get("RECLAIM_CHAOS_STRIDE", "1"))


def _fork(body: Callable[[], None]) -> int:
    """Run ``body`` in a forked child; return its exit code (-9: SIGKILL; 4: it got stuck)."""
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
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _child_engine(url: str, schema: str | None, log: Path, kill_at: int | None) -> Engine:
    if kill_at is None:
        os.environ.pop(chaosflow.KILL_AT_ENV, None)
    else:
        os.environ[chaosflow.KILL_AT_ENV] = str(kill_at)
    engine = create_engine(url, schema=schema)
    switch = chaosflow.KillSwitch.from_env()
    switch.install(engine)
    chaosflow.bind(engine, str(log), switch)
    return engine


def _durable(engine: Engine, distribute: bool) -> DurableEngine:
    return DurableEngine(
        engine,
        workflows=[chaosflow.workflow],
        lease_seconds=LEASE,
        distribute_items=distribute,
    )


def _victim(url: str, schema: str | None, log: Path, kill_at: int | None, distribute: bool) -> None:
    engine = _child_engine(url, schema, log, kill_at)
    durable = _durable(engine, distribute)
    Worker(durable, poll_interval=0.02, schedules=False, workflows=["chaos"]).run(until_idle=True)
    Path(f"{log}.points").write_text(str(chaosflow.Harness.switch.count))


def _resume_with_worker(url: str, schema: str | None, log: Path, distribute: bool) -> None:
    engine = _child_engine(url, schema, log, None)
    durable = _durable(engine, distribute)
    stats = Worker(durable, poll_interval=0.02, schedules=False, workflows=["chaos"]).run(
        max_runs=1
    )
    assert stats.succeeded == 1, stats


def _resume_with_engine(
    url: str, schema: str | None, log: Path, run_id: str, distribute: bool
) -> None:
    engine = _child_engine(url, schema, log, None)
    _durable(engine, distribute).run(run_id)


def _executions(log: Path) -> list[tuple[int, str]]:
    if not log.exists():
        return []
    pairs = []
    for line in log.read_text().splitlines():
        pid, key = line.split(" ", 1)
        pairs.append((int(pid), key))
    return pairs


def _completed_keys(store: Store, run_id: str) -> set[str]:
    done = set()
    for record in store.load_steps(run_id):
        if record.status is StepStatus.SUCCEEDED:
            suffix = f"/{record.item_key}" if record.item_key else ""
            done.add(f"{run_id}/{record.step}{suffix}")
    return done & set(chaosflow.expected_keys(run_id))


def _effects(engine: Engine, run_id: str) -> dict[str, int]:
    table = chaosflow.effects
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(table.c.key, table.c.value).where(table.c.run_id == run_id)
        ).all()
    return {str(key): int(value) for key, value in rows}


class Sweep:
    def __init__(
        self, engine: Engine, url: str, schema: str | None, tmp: Path, distribute: bool
    ) -> None:
        self.engine, self.url, self.schema, self.tmp = engine, url, schema, tmp
        self.distribute = distribute
        self.store = Store(engine)
        self.store.ensure_schema()
        chaosflow.tables.create_all(engine)
        self.durable = DurableEngine(self.store, workflows=[chaosflow.workflow])
        self.reran_in_flight = 0
        self.beyond = 0  # points past the end of a run that passed fewer points (queued only)
        self.labels: Counter[str] = Counter()

    def count_points(self) -> tuple[int, list[str]]:
        run_id = self.durable.start(chaosflow.workflow, None)
        log = self.tmp / "probe.log"
        self.engine.dispose()  # the child must not share our pooled connections
        status = _fork(lambda: _victim(self.url, self.schema, log, None, self.distribute))
        assert status == 0
        assert self.durable.result(run_id) == chaosflow.expected_total(run_id)
        return int(Path(f"{log}.points").read_text()), []

    def kill_and_resume(self, kill_at: int) -> None:
        run_id = self.durable.start(chaosflow.workflow, None)
        log = self.tmp / f"kill-{kill_at}.log"
        self.engine.dispose()
        status = _fork(lambda: _victim(self.url, self.schema, log, kill_at, self.distribute))
        if status == 0 and self.distribute:
            # Queued items are saved in batches, and how many results one batch carries
            # depends on timing: a run may pass fewer points than the probe did. Then it
            # finished before this point, which must be past its last one.
            passed = int(Path(f"{log}.points").read_text())
            assert kill_at > passed, f"kill point {kill_at}: not killed after {passed} points"
            assert self.durable.get_run(run_id).status is RunStatus.SUCCEEDED
            self.beyond += 1
            return
        assert status == -signal.SIGKILL, f"kill point {kill_at}: not killed ({status})"
        victim = {pid for pid, _ in _executions(log)}
        done_at_kill = _completed_keys(self.store, run_id)

        self.engine.dispose()
        if self.durable.get_run(run_id).status is RunStatus.SUCCEEDED:
            status = 0  # killed after its last commit: nothing is left to resume
        elif kill_at % 2:
            status = _fork(lambda: _resume_with_worker(self.url, self.schema, log, self.distribute))
        else:
            status = _fork(
                lambda: _resume_with_engine(self.url, self.schema, log, run_id, self.distribute)
            )
        assert status == 0, f"kill point {kill_at}: the resume failed (exit code {status})"

        where = f"kill point {kill_at}"
        run = self.durable.get_run(run_id)
        assert run.status is RunStatus.SUCCEEDED, f"{where}: run is {run.status}"
        assert self.durable.result(run_id) == chaosflow.expected_total(run_id), where
        steps = self.store.load_steps(run_id)
        assert all(step.status is StepStatus.SUCCEEDED for step in steps), where

        executions = _executions(log)
        by_resumer = Counter(key for pid, key in executions if pid not in victim)
        by_victim = Counter(key for pid, key in executions if pid in victim)
        for key in chaosflow.expected_keys(run_id):
            assert by_victim[key] + by_resumer[key] >= 1, f"{where}: {key} never ran (lost)"
            assert max(by_victim[key], by_resumer[key]) <= 1, f"{where}: {key} ran twice"
            if key in done_at_kill:
                assert by_resumer[key] == 0, f"{where}: completed {key} ran again"
            elif by_victim[key] and by_resumer[key]:
                self.reran_in_flight += 1
        effects = _effects(self.engine, run_id)
        assert sorted(effects) == sorted(chaosflow.expected_keys(run_id)), where
        assert all(value == chaosflow.value_of(key) for key, value in effects.items()), where


# About a second per kill point: ~52 s for the owner-runs-items sweep alone on a quiet machine,
# and `make test` runs another test file beside it on the second core. The limit only stops a
# hang; each forked child also has its own 60 s watchdog.
@pytest.mark.timeout(300)
@pytest.mark.parametrize("distribute", [False, True], ids=["owner-runs-items", "queued-items"])
def test_sigkill_at_every_kill_point_then_resume(
    engine: Engine, database_url: tuple[str, str | None], tmp_path: Path, distribute: bool
) -> None:
    """``queued-items``: map items go through the shared item queue (PostgreSQL only, every
    second point unless ``RECLAIM_CHAOS_STRIDE`` is set, to keep the default run short)."""
    url, schema = database_url
    if distribute and engine.dialect.name == "sqlite":
        pytest.skip("the item queue is for workers on PostgreSQL")
    stride = STRIDE if "RECLAIM_CHAOS_STRIDE" in os.environ or not distribute else 2
    sweep = Sweep(engine, url, schema, tmp_path, distribute)
    points, _ = sweep.count_points()
    assert points > 40, f"only {points} kill points: the hooks are not installed"
    tested = list(range(1, points + 1, stride))
    for kill_at in tested:
        sweep.kill_and_resume(kill_at)
    # The sweep must have hit steps that were in flight (ran in both processes, effect once).
    assert sweep.reran_in_flight > 0
    assert sweep.beyond <= len(tested) // 10, f"{sweep.beyond} points were past a run's end"
    print(
        f"{engine.dialect.name} {'queued' if distribute else 'owner'}: {len(tested)} kill points "
        f"of {points}; {sweep.reran_in_flight} in-flight steps ran again, effect applied once"
    )
