"""The durable engine beside DBOS Transact, on the same databases, in one script.

Measured, each in a fresh subprocess so that neither engine's state leaks into the other:

- per-step overhead of one sequential workflow of no-op steps (SQLite default journal, SQLite WAL,
  PostgreSQL), against the floor of one bare SQLite WAL commit (``synchronous=FULL``);
- N one-step workflows started and finished, one after the other;
- time from a restarted process to the first resumed step of a run that was SIGKILLed;
- reclaim only: time from a worker's death to another, already running worker resuming its run,
  and a 10,000-item map step on PostgreSQL with 1, 2 and 4 worker processes.

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
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
    samples = []
    for i in range(count):
        t0 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (v) VALUES (?)", (f"v{i}",))
        conn.execute("COMMIT")
        samples.append(time.perf_counter() - t0)
    conn.close()
    return {"per_commit_us": statistics.median(samples) * 1e6}


# --------------------------------------------------------------------------------------------
# DBOS Transact
# --------------------------------------------------------------------------------------------


def _dbos(url: str) -> Any:
    from dbos import DBOS

    DBOS(config={"name": "durable-bench", "system_database_url": url, "log_level": "WARNING"})
    return DBOS


def child_dbos_sequential(url: str, steps: int) -> dict[str, float]:
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

    DBOS.launch()
    sequential(3)  # warm the code paths
    t0 = time.perf_counter()
    sequential(steps)
    elapsed = time.perf_counter() - t0
    DBOS.destroy()
    return {"per_step_us": elapsed / steps * 1e6}


def child_dbos_many(url: str, count: int) -> dict[str, float]:
    DBOS = _dbos(url)

    @DBOS.step()
    def noop(i: int) -> int:
        return i

    @DBOS.workflow()
    def one_step(i: int) -> int:
        return noop(i)

    DBOS.launch()
    one_step(-1)
    t0 = time.perf_counter()
    for i in range(count):
        one_step(i)
    elapsed = time.perf_counter() - t0
    DBOS.destroy()
    return {"total_s": elapsed, "per_workflow_us": elapsed / count * 1e6}


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


QUICK = Plan(
    steps=300,
    workflows=200,
    repeats=1,
    floor_commits=300,
    restarts=1,
    map_items=1000,
    workers=(1, 2),
)
FULL = Plan(
    steps=1000,
    workflows=1000,
    repeats=5,
    floor_commits=2000,
    restarts=5,
    map_items=10_000,
    workers=(1, 2, 4),
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
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    backends = [b for b in BACKENDS if not (args.no_postgres and b == "postgresql")]
    results: dict[str, Any] = {"plan": plan.__dict__}
    engines = [
        e
        for e in ("dbos", "reclaim")
        if f"{e}-sequential" in CHILDREN and not (args.no_dbos and e == "dbos")
    ]

    with databases(args.postgres_url) as dbs:
        floor = median_of(
            plan.repeats,
            lambda: run_child(
                "floor", str(dbs.tmp / f"floor-{uuid.uuid4().hex}.db"), str(plan.floor_commits)
            )["per_commit_us"],
        )
        results["floor_commit_us"] = floor
        print(f"bare SQLite WAL commit (synchronous=FULL): {floor:8.0f} µs")

    per_step: dict[str, dict[str, float]] = {e: {} for e in engines}
    many: dict[str, dict[str, float]] = {e: {} for e in engines}
    for backend in backends:
        for engine in engines:
            with databases(args.postgres_url) as dbs:

                def seq(
                    engine: str = engine, backend: str = backend, dbs: Databases = dbs
                ) -> float:
                    url = dbs.url(backend, f"{engine}_bench")
                    return float(
                        run_child(f"{engine}-sequential", url, str(plan.steps))["per_step_us"]
                    )

                def wfs(
                    engine: str = engine, backend: str = backend, dbs: Databases = dbs
                ) -> float:
                    url = dbs.url(backend, f"{engine}_bench")
                    return float(run_child(f"{engine}-many", url, str(plan.workflows))["total_s"])

                per_step[engine][backend] = median_of(plan.repeats, seq)
                many[engine][backend] = median_of(plan.repeats, wfs)
            print(
                f"{engine:8s} {backend:11s} per step {per_step[engine][backend]:8.0f} µs"
                f"   {plan.workflows} one-step workflows {many[engine][backend]:6.2f} s"
            )
    results["per_step_us"] = per_step
    results["one_step_workflows_s"] = many

    restart: dict[str, dict[str, float]] = {e: {} for e in engines}
    for backend in backends:
        for engine in engines:
            with databases(args.postgres_url) as dbs:

                def rs(engine: str = engine, backend: str = backend, dbs: Databases = dbs) -> float:
                    return measure_restart(engine, dbs.url(backend, f"{engine}_bench"), dbs.tmp)

                restart[engine][backend] = median_of(plan.restarts, rs)
            print(
                f"{engine:8s} {backend:11s} restart → first resumed step {restart[engine][backend]:6.2f} s"
            )
    results["restart_to_resume_s"] = restart

    print()
    print("summary (median; ratio = DBOS / reclaim, higher is better for reclaim)")
    for backend in backends:
        d, r = per_step.get("dbos", {}).get(backend), per_step.get("reclaim", {}).get(backend)
        print(
            f"  per step   {backend:11s} dbos {d or 0:7.0f} µs  reclaim {r or 0:7.0f} µs"
            f"  ratio {fmt_ratio(d, r)}  reclaim/floor {fmt_ratio(r, floor)}"
        )
    for backend in backends:
        d, r = many.get("dbos", {}).get(backend), many.get("reclaim", {}).get(backend)
        print(
            f"  {plan.workflows} wfs   {backend:11s} dbos {d or 0:7.2f} s   reclaim {r or 0:7.2f} s"
            f"   ratio {fmt_ratio(d, r)}"
        )
    for backend in backends:
        d, r = restart.get("dbos", {}).get(backend), restart.get("reclaim", {}).get(backend)
        print(
            f"  restart    {backend:11s} dbos {d or 0:7.2f} s   reclaim {r or 0:7.2f} s"
            f"   ratio {fmt_ratio(d, r)}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


CHILDREN: dict[str, Callable[..., dict[str, float]]] = {
    "floor": lambda path, n: child_floor(path, int(n)),
    "dbos-sequential": lambda url, n: child_dbos_sequential(url, int(n)),
    "dbos-many": lambda url, n: child_dbos_many(url, int(n)),
    "dbos-recover": child_dbos_recover,
}


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        result = CHILDREN[sys.argv[2]](*sys.argv[3:])
        print(json.dumps(result), flush=True)
        os._exit(0)  # engines leave non-daemon threads behind; we have printed our answer
    main()
