"""The durable engine beside DBOS Transact, on the same databases, in one script.

Measured, each in a fresh subprocess so that neither engine's state leaks into the other:

- per-step overhead of one sequential workflow of no-op steps (SQLite default journal, SQLite WAL,
  PostgreSQL), against the floor of one bare SQLite WAL commit (``synchronous=FULL``);
- N one-step workflows started and finished, one after the other;
- time from a restarted process to the first resumed step of a run that was SIGKILLed;
- reclaim only: time from a worker's death to another, already running worker resuming its run,
  and a map step of 20 ms items on PostgreSQL with 1, 2 and 4 worker processes (items/s
  against the ideal, and the peak connections per worker).

    python bench/durable_bench.py            # the full run (several minutes)
    python bench/durable_bench.py --quick    # smaller counts, one repeat, under a minute

PostgreSQL: the script creates its own databases (``dbos_bench_*``/``reclaim_bench_*``) on the
server of ``--postgres-url`` (default ``RECLAIM_BENCH_POSTGRES_URL`` or
``postgresql://postgres@127.0.0.1:5432/postgres``) and drops them afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
PYTHON = sys.executable
DEFAULT_PG = os.environ.get(
    "RECLAIM_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ("sqlite", "sqlite-wal", "postgresql")
PARTS = ("workload", "restart", "takeover", "map")


# --------------------------------------------------------------------------------------------
# Databases
# --------------------------------------------------------------------------------------------


@dataclass
class Databases:
    """Fresh databases for one measurement; removed by ``close``."""

    pg_admin_url: str
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="durable-bench-")))
    pg_names: list[str] = field(default_factory=list)

    def url(self, backend: str, tag: str) -> str:
        name = f"{tag}_{uuid.uuid4().hex[:8]}"
        if backend == "postgresql":
            import psycopg

            with psycopg.connect(self.pg_admin_url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            self.pg_names.append(name)
            base = self.pg_admin_url.rsplit("/", 1)[0]
            return f"{base}/{name}"
        path = self.tmp / f"{name}.sqlite"
        if backend == "sqlite-wal":
            # WAL is a property of the file: set once, every later connection uses it.
            with contextlib.closing(sqlite3.connect(path)) as conn:
                conn.execute("PRAGMA journal_mode=WAL")
        return f"sqlite:///{path}"

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
        if not self.pg_names:
            return
        import psycopg

        with psycopg.connect(self.pg_admin_url, autocommit=True) as conn:
            for name in self.pg_names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.pg_names.clear()


def run_child(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> Any:
    """Run one measurement in a fresh interpreter; it prints one JSON line last."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [PYTHON, str(HERE), "_child", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"child {args} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------
# The floor: one bare WAL commit
# --------------------------------------------------------------------------------------------


def child_floor(path: str, count: int) -> dict[str, float]:
    """The mean of ``count`` bare commits: the same statistic as a workflow's per-step figure
    (its total time over its steps), so that the ratio of the two compares like with like; a
    median of single commits would leave out the slow commits (checkpoints of the WAL, fsync
    stalls) that the per-step mean includes."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
    samples = []
    started = time.perf_counter()
    for i in range(count):
        t0 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (v) VALUES (?)", (f"v{i}",))
        conn.execute("COMMIT")
        samples.append(time.perf_counter() - t0)
    total = time.perf_counter() - started
    conn.close()
    return {
        "per_commit_us": total / count * 1e6,
        "median_commit_us": statistics.median(samples) * 1e6,
    }


# --------------------------------------------------------------------------------------------
# DBOS Transact
# --------------------------------------------------------------------------------------------


def _dbos(url: str) -> Any:
    from dbos import DBOS

    DBOS(config={"name": "durable-bench", "system_database_url": url, "log_level": "WARNING"})
    return DBOS


def child_dbos_workload(url: str, steps: int, count: int) -> dict[str, float]:
    """One sequential workflow of ``steps`` no-op steps, then ``count`` one-step workflows."""
    DBOS = _dbos(url)

    @DBOS.step()
    def noop(i: int) -> int:
        return i

    @DBOS.workflow()
    def sequential(n: int) -> int:
        total = 0
        for i in range(n):
            total += noop(i)
        return total

    @DBOS.workflow()
    def one_step(i: int) -> int:
        return noop(i)

    DBOS.launch()
    sequential(3)  # warm the code paths
    one_step(-1)
    t0 = time.perf_counter()
    sequential(steps)
    sequential_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(count):
        one_step(i)
    many_s = time.perf_counter() - t0
    DBOS.destroy()
    return {"per_step_us": sequential_s / steps * 1e6, "total_s": many_s}


# Worker lease in the takeover measurement: a dead worker's run waits out at most this.
TAKEOVER_LEASE = 2.0
# Items one worker runs at once in the map measurement, and how long each one waits (the
# shape of a call to Jira): the ideal is workers * MAP_CONCURRENCY / MAP_ITEM_SECONDS items/s.
MAP_CONCURRENCY = 8
MAP_ITEM_SECONDS = 0.02
KILL_AT = 5  # the victim dies just before this step; the restarted process resumes here


def child_dbos_recover(url: str, marker: str) -> dict[str, float]:
    """Victim (RECOVER_ROLE=victim) dies at step KILL_AT; the resumer reports when it runs it."""
    victim = os.environ.get("RECOVER_ROLE") == "victim"
    DBOS = _dbos(url)

    @DBOS.step()
    def work(i: int) -> int:
        if i == KILL_AT:
            if victim:
                os.kill(os.getpid(), signal.SIGKILL)
            Path(marker).write_text(repr(time.time()))
            os._exit(0)
        return i

    @DBOS.workflow()
    def killed(n: int) -> int:
        return sum(work(i) for i in range(n))

    DBOS.launch()
    if victim:
        killed(KILL_AT + 5)
    else:
        time.sleep(60)  # recovery runs in DBOS's own thread; the step above exits the process
    return {}


# --------------------------------------------------------------------------------------------
# reclaim
# --------------------------------------------------------------------------------------------


def _reclaim(url: str, **options: Any) -> Any:
    from reclaim.database import create_engine
    from reclaim.durable import DurableEngine, ensure_schema

    engine = create_engine(url)
    ensure_schema(engine)
    return DurableEngine(engine, **options)


def _noop(ctx: Any, **_: Any) -> int:
    return 0


def _chain(name: str, steps: int, fn: Callable[..., Any] = _noop) -> Any:
    """``steps`` independent no-op steps in declaration order (the sequential executor runs
    them one at a time, like DBOS's loop of step calls)."""
    from reclaim.durable import Workflow

    workflow = Workflow(name)
    for i in range(steps):
        workflow.step(fn, name=f"s{i}")
    return workflow


def child_reclaim_workload(url: str, steps: int, count: int) -> dict[str, float]:
    """The same workload as ``child_dbos_workload``, on reclaim's embedded engine."""
    durable = _reclaim(url)
    durable.run_workflow(_chain("warm", 3))
    sequential = _chain("sequential", steps)
    one_step = _chain("one-step", 1)
    durable.run_workflow(one_step, -1)
    t0 = time.perf_counter()
    durable.run_workflow(sequential)
    sequential_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(count):
        durable.run_workflow(one_step, i)
    many_s = time.perf_counter() - t0
    return {"per_step_us": sequential_s / steps * 1e6, "total_s": many_s}


def child_reclaim_floor_workload(path: str, url: str, steps: int) -> dict[str, float]:
    """Bare commits and reclaim's steps in one process, back to back, both as a mean per
    operation over the same count: the per-step cost against the floor, like for like."""
    floor = child_floor(path, steps)
    durable = _reclaim(url)
    durable.run_workflow(_chain("warm", 3))
    sequential = _chain("sequential", steps)
    t0 = time.perf_counter()
    durable.run_workflow(sequential)
    per_step = (time.perf_counter() - t0) / steps * 1e6
    return {"per_commit_us": floor["per_commit_us"], "per_step_us": per_step}


def child_reclaim_recover(url: str, marker: str) -> dict[str, float]:
    """Victim dies at step KILL_AT; the resumer (a new process) takes the run over at once
    (its owner process is gone) and reports when it runs that step."""
    victim = os.environ.get("RECOVER_ROLE") == "victim"

    def work(ctx: Any) -> int:
        if ctx.step == f"s{KILL_AT}":
            if victim:
                os.kill(os.getpid(), signal.SIGKILL)
            Path(marker).write_text(repr(time.time()))
            os._exit(0)
        return 0

    from reclaim.durable import RunStatus, Workflow

    workflow = Workflow("killed", register=False)
    for i in range(KILL_AT + 5):
        workflow.step(work, name=f"s{i}")
    durable = _reclaim(url, workflows=[workflow])
    if victim:
        durable.run_workflow(workflow)
    else:
        (run,) = durable.list_runs(statuses=[RunStatus.RUNNING], limit=1)
        durable.run(run.id)
    return {}


def child_reclaim_worker(url: str, workdir: str, lease: str) -> dict[str, float]:
    """A worker process for the takeover and map measurements (RECLAIM_ROLE tells which)."""
    from reclaim.durable import StepContext, Workflow
    from reclaim.durable.worker import Worker

    role = os.environ["RECLAIM_ROLE"]
    work = Path(workdir)

    takeover = Workflow("takeover", version="1")

    def step(ctx: StepContext) -> int:
        if ctx.step == f"s{KILL_AT}":
            if role == "victim":
                while not (work / "go").exists():
                    time.sleep(0.01)
                (work / "died").write_text(repr(time.time()))
                os.kill(os.getpid(), signal.SIGKILL)
            (work / "resumed").write_text(repr(time.time()))
        return 0

    for i in range(KILL_AT + 3):
        takeover.step(step, name=f"s{i}")

    fanout = Workflow("fanout", version="1")

    @fanout.step()
    def keys(ctx: StepContext) -> list[str]:
        return [f"item-{i:06d}" for i in range(int(ctx.input))]

    @fanout.map_step(over="keys", key=lambda key: key, concurrency=MAP_CONCURRENCY)
    def each(ctx: StepContext, item: str) -> int:
        time.sleep(MAP_ITEM_SECONDS)
        return len(item)

    durable = _reclaim(url, lease_seconds=float(lease), distribute_items=role == "map")
    worker = Worker(durable, poll_interval=0.05, schedules=False, workflows=[role_workflow(role)])
    worker.install_signal_handlers()
    peak = PeakConnections(durable.store.engine)
    # CPU from ready to stopped (imports excluded): what one item costs its worker, in all.
    cpu = time.process_time()
    (work / f"ready-{os.getpid()}").write_text("")
    worker.run()
    peak.stop()
    (work / f"cpu-{os.getpid()}").write_text(repr(time.process_time() - cpu))
    (work / f"connections-{os.getpid()}").write_text(str(peak.peak))
    return {}


class PeakConnections:
    """The most connections this process's pool held open at once (sampled every 5 ms)."""

    def __init__(self, engine: Any) -> None:
        import threading

        self.pool = engine.pool
        self.peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.wait(0.005):
            self.peak = max(self.peak, self.pool.checkedin() + self.pool.checkedout())

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def role_workflow(role: str) -> str:
    return "fanout" if role == "map" else "takeover"


def measure_worker_takeover(url: str, tmp: Path, lease: float) -> float:
    """Seconds from a worker's SIGKILL to the next step running in a standby worker."""
    from reclaim.database import create_engine
    from reclaim.durable import DurableEngine, ensure_schema

    work = Path(tempfile.mkdtemp(dir=tmp))
    engine = create_engine(url)
    ensure_schema(engine)
    args = [PYTHON, str(HERE), "_child", "reclaim-worker", url, str(work), str(lease)]
    victim = subprocess.Popen(
        args, env={**os.environ, "RECLAIM_ROLE": "victim"}, stdout=subprocess.DEVNULL
    )
    wait_until(lambda: any(work.glob("ready-*")))
    # Registering "takeover" needs the workflow object; the child defines it, so insert the
    # run through a throwaway definition of the same shape.
    from reclaim.durable import Workflow

    shape = Workflow("takeover", version="1", register=False)
    for i in range(KILL_AT + 3):
        shape.step(_noop, name=f"s{i}")
    DurableEngine(engine, workflows=[shape]).start(shape)
    standby = subprocess.Popen(
        args, env={**os.environ, "RECLAIM_ROLE": "standby"}, stdout=subprocess.DEVNULL
    )
    wait_until(lambda: len(list(work.glob("ready-*"))) == 2)
    time.sleep(0.3)
    (work / "go").write_text("")
    wait_until(lambda: (work / "resumed").exists(), timeout=60)
    standby.send_signal(signal.SIGTERM)
    standby.wait(timeout=30)
    victim.wait(timeout=30)
    engine.dispose()
    return float((work / "resumed").read_text()) - float((work / "died").read_text())


def measure_map(url: str, tmp: Path, items: int, workers: int) -> dict[str, float]:
    """Items per second of one map step drained by ``workers`` worker processes, and the
    connections they held (each worker's own pool, and what the server saw in all)."""
    import threading

    import psycopg

    from reclaim.database import create_engine
    from reclaim.durable import DurableEngine, StepContext, Workflow, ensure_schema

    work = Path(tempfile.mkdtemp(dir=tmp))
    engine = create_engine(url)
    ensure_schema(engine)
    args = [PYTHON, str(HERE), "_child", "reclaim-worker", url, str(work), "10"]
    procs = [
        subprocess.Popen(args, env={**os.environ, "RECLAIM_ROLE": "map"}, stdout=subprocess.DEVNULL)
        for _ in range(workers)
    ]
    wait_until(lambda: len(list(work.glob("ready-*"))) == workers, timeout=120)
    time.sleep(0.5)
    shape = Workflow("fanout", version="1", register=False)

    @shape.step()
    def keys(ctx: StepContext) -> list[str]:
        return []

    @shape.map_step(over="keys", key=lambda key: key, concurrency=MAP_CONCURRENCY)
    def each(ctx: StepContext, item: str) -> int:
        return 0

    durable = DurableEngine(engine, workflows=[shape])
    server_peak = 0
    done = threading.Event()
    # The sampler's own connection is not "reclaim", and the engine above is disposed before
    # the clock starts, so the count is the workers' connections only.
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as pg:

        def sample() -> None:
            nonlocal server_peak
            with psycopg.connect(url, autocommit=True, application_name="bench") as mine:
                while not done.wait(0.01):
                    (count,) = mine.execute(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND application_name = 'reclaim'"
                    ).fetchone() or (0,)
                    server_peak = max(server_peak, int(count))

        run_id = durable.start(shape, items)
        engine.dispose()
        sampler = threading.Thread(target=sample, daemon=True)
        t0 = time.perf_counter()
        sampler.start()

        def status() -> str:
            row = pg.execute("SELECT status FROM durable_runs WHERE id = %s", (run_id,)).fetchone()
            return str(row[0]) if row else "?"

        wait_until(lambda: status() == "succeeded", timeout=1800, every=0.01)
        elapsed = time.perf_counter() - t0
        done.set()
        sampler.join()
        (finished,) = pg.execute(
            "SELECT count(*) FROM durable_steps WHERE run_id = %s AND item_key <> ''", (run_id,)
        ).fetchone() or (0,)
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait(timeout=60)
    assert finished == items, (finished, items)
    per_worker = [int(path.read_text()) for path in work.glob("connections-*")]
    cpu = sum(float(path.read_text()) for path in work.glob("cpu-*"))
    engine.dispose()
    return {
        "items_per_s": items / elapsed,
        "worker_cpu_ms_per_item": cpu * 1000 / items,
        "peak_connections_per_worker": max(per_worker),
        "server_peak_connections": server_peak,
    }


def wait_until(condition: Callable[[], bool], timeout: float = 60, every: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the benchmark made no progress")
        time.sleep(every)


# --------------------------------------------------------------------------------------------
# Recovery timing, shared by both engines
# --------------------------------------------------------------------------------------------


def measure_restart(engine: str, url: str, tmp: Path) -> float:
    """Seconds from launching a new process to the first resumed step of a SIGKILLed run."""
    marker = tmp / f"marker-{uuid.uuid4().hex[:8]}"
    args = [PYTHON, str(HERE), "_child", f"{engine}-recover", url, str(marker)]
    victim = subprocess.run(
        args,
        env={**os.environ, "RECOVER_ROLE": "victim"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if victim.returncode != -signal.SIGKILL:
        raise RuntimeError(f"victim did not die by SIGKILL: {victim.returncode}\n{victim.stderr}")
    t0 = time.time()
    resumer = subprocess.run(
        args,
        env={**os.environ, "RECOVER_ROLE": "resumer"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if resumer.returncode != 0 or not marker.exists():
        raise RuntimeError(f"resumer failed: {resumer.returncode}\n{resumer.stderr[-3000:]}")
    return float(marker.read_text()) - t0


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


@dataclass
class Plan:
    steps: int
    workflows: int
    repeats: int
    floor_commits: int
    restarts: int
    map_items: int
    workers: tuple[int, ...]
    map_repeats: int
    backends: tuple[str, ...] = BACKENDS


QUICK = Plan(
    steps=200,
    workflows=100,
    repeats=1,
    floor_commits=200,
    restarts=1,
    map_items=300,
    workers=(1, 2, 4),
    map_repeats=1,
    backends=("sqlite-wal", "postgresql"),
)
FULL = Plan(
    steps=1000,
    workflows=1000,
    repeats=5,
    floor_commits=2000,
    restarts=5,
    map_items=1_500,
    workers=(1, 2, 4),
    map_repeats=3,
)


def median_of(runs: int, fn: Callable[[], float]) -> float:
    return statistics.median(fn() for _ in range(runs))


@contextlib.contextmanager
def databases(pg_url: str) -> Iterator[Databases]:
    dbs = Databases(pg_url)
    try:
        yield dbs
    finally:
        dbs.close()


def fmt_ratio(peer: float | None, ours: float | None) -> str:
    if peer is None or ours is None or ours == 0:
        return "-"
    return f"{peer / ours:.1f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts, one repeat")
    parser.add_argument("--postgres-url", default=DEFAULT_PG, help="an admin URL to a server")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-dbos", action="store_true", help="reclaim only")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=PARTS,
        default=list(PARTS),
        help="measure only these (default: all)",
    )
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    backends = [b for b in plan.backends if not (args.no_postgres and b == "postgresql")]
    results: dict[str, Any] = {"plan": plan.__dict__}
    engines = [
        e
        for e in ("dbos", "reclaim")
        if f"{e}-workload" in CHILDREN and not (args.no_dbos and e == "dbos")
    ]

    # The machine is shared: load comes and goes for minutes. So every repeat runs each
    # engine on each backend back to back (and the floor beside them), and the medians are
    # taken across repeats: both engines see the same weather.
    floors: list[float] = []
    paired: list[dict[str, float]] = []
    samples: dict[tuple[str, str], list[dict[str, float]]] = {}
    for repeat in range(plan.repeats if "workload" in args.parts else 0):
        with databases(args.postgres_url) as dbs:
            path = str(dbs.tmp / f"floor-{uuid.uuid4().hex}.db")
            floors.append(run_child("floor", path, str(plan.floor_commits))["per_commit_us"])
            if "reclaim" in engines and "sqlite-wal" in backends:
                pair = run_child(
                    "reclaim-floor",
                    str(dbs.tmp / f"pair-{uuid.uuid4().hex}.db"),
                    dbs.url("sqlite-wal", "reclaim_pair"),
                    str(plan.steps),
                )
                paired.append(pair)
                print(
                    f"  repeat {repeat + 1}: one process, mean of both: bare commit "
                    f"{pair['per_commit_us']:5.0f} µs, reclaim step {pair['per_step_us']:5.0f} µs"
                    f" = {pair['per_step_us'] / pair['per_commit_us']:.2f}x",
                    flush=True,
                )
            for backend in backends:
                for engine in engines:
                    url = dbs.url(backend, f"{engine}_bench")
                    result = run_child(
                        f"{engine}-workload", url, str(plan.steps), str(plan.workflows)
                    )
                    samples.setdefault((engine, backend), []).append(result)
                    print(
                        f"  repeat {repeat + 1}: {engine:8s} {backend:11s} "
                        f"{result['per_step_us']:7.0f} µs/step  {result['total_s']:6.2f} s"
                        f"  (floor {floors[-1]:.0f} µs)",
                        flush=True,
                    )
    floor = statistics.median(floors) if floors else 0.0
    results["floor_commit_us"] = floor
    if floors:
        print(f"bare SQLite WAL commit (synchronous=FULL), mean: {floor:8.0f} µs")
    if paired:
        ratios = [pair["per_step_us"] / pair["per_commit_us"] for pair in paired]
        results["step_over_commit_one_process"] = {
            "median_ratio": statistics.median(ratios),
            "ratios": ratios,
            "commit_us": statistics.median(pair["per_commit_us"] for pair in paired),
            "step_us": statistics.median(pair["per_step_us"] for pair in paired),
        }
        print(
            f"reclaim step / bare commit, one process, mean of both: "
            f"{statistics.median(ratios):.2f}x (repeats {', '.join(f'{r:.2f}' for r in ratios)})"
        )
    per_step: dict[str, dict[str, float]] = {e: {} for e in engines}
    many: dict[str, dict[str, float]] = {e: {} for e in engines}
    for (engine, backend), runs in samples.items():
        per_step[engine][backend] = statistics.median(r["per_step_us"] for r in runs)
        many[engine][backend] = statistics.median(r["total_s"] for r in runs)
        print(
            f"{engine:8s} {backend:11s} per step {per_step[engine][backend]:8.0f} µs"
            f"   {plan.workflows} one-step workflows {many[engine][backend]:6.2f} s"
        )
    results["per_step_us"] = per_step
    results["one_step_workflows_s"] = many

    restart: dict[str, dict[str, float]] = {e: {} for e in engines}
    restart_samples: dict[tuple[str, str], list[float]] = {}
    for _ in range(plan.restarts if "restart" in args.parts else 0):
        for backend in backends:
            for engine in engines:
                with databases(args.postgres_url) as dbs:
                    url = dbs.url(backend, f"{engine}_bench")
                    seconds = measure_restart(engine, url, dbs.tmp)
                restart_samples.setdefault((engine, backend), []).append(seconds)
    for (engine, backend), values in restart_samples.items():
        restart[engine][backend] = statistics.median(values)
        print(
            f"{engine:8s} {backend:11s} restart → first resumed step "
            f"{restart[engine][backend]:6.2f} s"
        )
    results["restart_to_resume_s"] = restart

    takeover: dict[str, float] = {}
    map_rates: dict[int, float] = {}
    map_connections: dict[int, float] = {}
    map_cpu: dict[int, float] = {}
    if "reclaim" in engines:
        takeover_backends = [b for b in ("sqlite-wal", "postgresql") if b in backends]
        if args.quick:
            takeover_backends = takeover_backends[-1:]  # one is enough for a smoke run
        for backend in takeover_backends if "takeover" in args.parts else []:
            with databases(args.postgres_url) as dbs:

                def tk(backend: str = backend, dbs: Databases = dbs) -> float:
                    url = dbs.url(backend, "reclaim_takeover")
                    return measure_worker_takeover(url, dbs.tmp, TAKEOVER_LEASE)

                takeover[backend] = median_of(plan.restarts, tk)
            print(
                f"reclaim  {backend:11s} worker death → standby worker resumes "
                f"{takeover[backend]:6.2f} s (lease {TAKEOVER_LEASE:g} s)"
            )
        if "postgresql" in backends and "map" in args.parts:
            # Worker counts interleaved within each repeat, so a load swing on the shared
            # machine hits every count; each worker count gets map_items items per worker.
            map_samples: dict[int, list[dict[str, float]]] = {}
            for repeat in range(plan.map_repeats):
                for count in plan.workers:
                    with databases(args.postgres_url) as dbs:
                        url = dbs.url("postgresql", "reclaim_map")
                        sample = measure_map(url, dbs.tmp, plan.map_items * count, count)
                    map_samples.setdefault(count, []).append(sample)
                    print(
                        f"  repeat {repeat + 1}: map, {count} worker(s): "
                        f"{sample['items_per_s']:6.0f} items/s, peak "
                        f"{sample['peak_connections_per_worker']:.0f} connections per worker "
                        f"(server saw {sample['server_peak_connections']:.0f}), "
                        f"{sample['worker_cpu_ms_per_item']:.2f} ms worker CPU per item, "
                        f"load {os.getloadavg()[0]:.1f}",
                        flush=True,
                    )
            for count, runs in map_samples.items():
                map_rates[count] = statistics.median(r["items_per_s"] for r in runs)
                map_connections[count] = max(r["peak_connections_per_worker"] for r in runs)
                map_cpu[count] = statistics.median(r["worker_cpu_ms_per_item"] for r in runs)
    results["worker_takeover_s"] = takeover
    results["map_items_per_s"] = map_rates
    results["map_peak_connections_per_worker"] = map_connections
    results["map_worker_cpu_ms_per_item"] = map_cpu

    print()
    print("summary (median; ratio = DBOS / reclaim, higher is better for reclaim)")
    for backend in backends:
        d, r = per_step.get("dbos", {}).get(backend), per_step.get("reclaim", {}).get(backend)
        if d is None and r is None:
            continue
        print(
            f"  per step   {backend:11s} dbos {d or 0:7.0f} µs  reclaim {r or 0:7.0f} µs"
            f"  ratio {fmt_ratio(d, r)}"
            # The floor is a SQLite WAL commit: a ratio to it means something for that only.
            + (f"  reclaim/floor (means) {fmt_ratio(r, floor)}" if backend == "sqlite-wal" else "")
        )
    for backend in backends:
        d, r = many.get("dbos", {}).get(backend), many.get("reclaim", {}).get(backend)
        if d is None and r is None:
            continue
        print(
            f"  {plan.workflows} wfs   {backend:11s} dbos {d or 0:7.2f} s   reclaim {r or 0:7.2f} s"
            f"   ratio {fmt_ratio(d, r)}"
        )
    for backend in backends:
        d, r = restart.get("dbos", {}).get(backend), restart.get("reclaim", {}).get(backend)
        if d is None and r is None:
            continue
        print(
            f"  restart    {backend:11s} dbos {d or 0:7.2f} s   reclaim {r or 0:7.2f} s"
            f"   ratio {fmt_ratio(d, r)}"
        )
    for backend, seconds in takeover.items():
        print(
            f"  takeover   {backend:11s} reclaim {seconds:7.2f} s after the worker's death "
            f"(lease {TAKEOVER_LEASE:g} s; DBOS has no equivalent: it recovers a dead "
            "executor's workflows only when told to)"
        )
    for count, rate in map_rates.items():
        ideal = count * MAP_CONCURRENCY / MAP_ITEM_SECONDS
        print(
            f"  map        postgresql  {count} worker(s) {rate:6.0f} items/s of "
            f"{MAP_ITEM_SECONDS * 1000:g} ms each; ideal {ideal:5.0f} ({count} x "
            f"{MAP_CONCURRENCY} in flight): {rate / ideal:.2f} of ideal; peak "
            f"{map_connections[count]:.0f} connections per worker; worker CPU "
            f"{map_cpu[count]:.2f} ms per item"
        )
    print(f"  load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


CHILDREN: dict[str, Callable[..., dict[str, float]]] = {
    "floor": lambda path, n: child_floor(path, int(n)),
    "dbos-workload": lambda url, n, m: child_dbos_workload(url, int(n), int(m)),
    "dbos-recover": child_dbos_recover,
    "reclaim-workload": lambda url, n, m: child_reclaim_workload(url, int(n), int(m)),
    "reclaim-floor": lambda path, url, n: child_reclaim_floor_workload(path, url, int(n)),
    "reclaim-recover": child_reclaim_recover,
    "reclaim-worker": child_reclaim_worker,
}


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        result = CHILDREN[sys.argv[2]](*sys.argv[3:])
        print(json.dumps(result), flush=True)
        os._exit(0)  # engines leave non-daemon threads behind; we have printed our answer
    main()
