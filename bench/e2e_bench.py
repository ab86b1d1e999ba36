"""End to end: billing, inventory and utilization files to stored recommendations.

    python bench/e2e_bench.py --resources 1000000 --days 7 [--repeat 3] [--postgres URL]
                              [--collect-only]

The data is reclaim's own generator (``generate_sample``: FOCUS Parquet billed daily, one
inventory record per resource, wide utilization samples four times a day), cached under
``bench/out/``. Each repeat uses a fresh database (a SQLite file, or a fresh PostgreSQL schema)
migrated with ``reclaim.store.upgrade`` and runs the product's weekly job,
``reclaim.pipeline.run_weekly``, twice on the same files, each time in a fresh subprocess so
that the peak memory (VmHWM) is that run's alone:

- ``first``: an empty store; the files are collected, the built-in pack evaluated, every match
  stored as a new recommendation;
- ``again``: the weekly steady state; the same files are recognised (nothing collected again),
  the rules run over the stored facts and every recommendation is seen again (updated, no
  duplicate).

With ``--collect-only``, each repeat runs only the collect step (``collect_into``: files to a
stored collection, as the weekly job's first step does), in a fresh subprocess.

Per run: wall time of ``run_weekly`` (excluding interpreter start and imports), the durations
of its durable steps (``collect``, ``evaluate``, ``report``), the process's CPU time and peak
RSS. Medians over the repeats, with the load average at the start and end.

On SQLite, a probe in the parent takes the write lock (``BEGIN IMMEDIATE``, then rolls back)
every second while a run goes on, as the durable engine's heartbeat must, and reports the
longest it had to wait: how long one of the run's transactions kept every other writer out.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

BENCH_OUT = Path(__file__).resolve().parent / "out"


def dataset(resources: int, days: int) -> Path:
    from reclaim.ingest import generate_sample

    folder = BENCH_OUT / f"e2e_{resources}x{days}"
    done = folder / "DONE"
    if done.exists():
        return folder
    started = time.perf_counter()
    files = generate_sample(
        folder, resources=resources, days=days, seed=5, table_format="parquet", progress=print
    )
    done.write_text(f"{files.billing_rows}\n")
    print(f"generated {files.billing_rows:,} billing rows in {time.perf_counter() - started:.1f} s")
    return folder


def peak_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(
    url: str, schema: str | None, data: Path, migrate: bool, collect_only: bool = False
) -> dict[str, Any]:
    from reclaim.database import create_engine
    from reclaim.durable import DurableEngine
    from reclaim.pipeline import WeeklyInput, run_weekly
    from reclaim.store import upgrade

    engine = create_engine(url, schema=schema)
    if migrate:
        upgrade(engine)
    if collect_only:
        return collect_child(engine, data)
    spec = WeeklyInput(
        billing=[str(data / "billing")],
        inventory=[str(data / "inventory.parquet")],
        utilization=[str(data / "utilization.parquet")],
    )
    cpu0 = time.process_time()
    started = time.perf_counter()
    run = run_weekly(engine, spec)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    steps = {
        step.step: step.duration
        for step in DurableEngine(engine).steps(run.run_id)
        if not step.item_key
    }
    engine.dispose()
    return {
        "wall": wall,
        "cpu": cpu,
        "peak_mib": peak_mib(),
        "steps": steps,
        "collected": run.collect.new,
        "resources": run.collect.resources,
        "rows_read": run.collect.rows_read,
        "counts": run.recommend.counts,
    }


def collect_child(engine: Any, data: Path) -> dict[str, Any]:
    """The collect step alone, as the weekly job runs it: files to a stored collection."""
    from reclaim.ingest import collect_into

    cpu0 = time.process_time()
    started = time.perf_counter()
    stored, report = collect_into(
        engine,
        [data / "billing"],
        [data / "inventory.parquet"],
        [data / "utilization.parquet"],
    )
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    engine.dispose()
    return {
        "wall": wall,
        "cpu": cpu,
        "peak_mib": peak_mib(),
        "steps": {"collect": wall},
        "collected": stored.new,
        "resources": stored.resources,
        "rows_read": report.rows if report is not None else 0,
        "counts": {},
    }


class LockProbe:
    """Takes the SQLite write lock every second; records the longest wait for it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.longest = 0.0
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LockProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            if not Path(self.path).exists():
                continue
            connection = sqlite3.connect(self.path, timeout=600, isolation_level=None)
            try:
                started = time.perf_counter()
                connection.execute("BEGIN IMMEDIATE")
                self.longest = max(self.longest, time.perf_counter() - started)
                connection.execute("ROLLBACK")
            except sqlite3.OperationalError:
                self.failed += 1
            finally:
                connection.close()


def spawn(
    url: str, schema: str | None, data: Path, migrate: bool, collect_only: bool = False
) -> dict[str, Any]:
    args = [sys.executable, __file__, "--child", url, "--data", str(data)]
    if schema:
        args += ["--schema", schema]
    if migrate:
        args.append("--migrate")
    if collect_only:
        args.append("--collect-only")
    if url.startswith("sqlite:///"):
        with LockProbe(url.removeprefix("sqlite:///")) as probe:
            done = subprocess.run(args, check=False, capture_output=True, text=True)
    else:
        done = subprocess.run(args, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"the run failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if url.startswith("sqlite:///"):
        result["lock_wait_max"] = probe.longest
    return result


def fresh_postgres(url: str) -> str:
    import sqlalchemy as sa

    from reclaim.database import create_engine

    schema = f"e2e_{uuid.uuid4().hex[:12]}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return schema


def drop_postgres(url: str, schema: str) -> None:
    import sqlalchemy as sa

    from reclaim.database import create_engine

    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def show(label: str, runs: list[dict[str, Any]]) -> None:
    def med(values: list[float]) -> float:
        return statistics.median(values)

    steps = sorted({name for run in runs for name in run["steps"]})
    phases = ", ".join(
        f"{name} {med([run['steps'].get(name) or 0.0 for run in runs]):.1f} s" for name in steps
    )
    walls = [run["wall"] for run in runs]
    print(
        f"  {label:<6} wall {med(walls):6.1f} s ({min(walls):.1f} - {max(walls):.1f}), "
        f"CPU {med([r['cpu'] for r in runs]):5.1f} s, "
        f"peak {med([r['peak_mib'] for r in runs]) / 1024:4.2f} GiB | {phases}"
    )
    last = runs[-1]
    print(
        f"         collected new: {last['collected']}, resources {last['resources']:,}, "
        f"counts {last['counts']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres", help="also run on this PostgreSQL URL")
    parser.add_argument("--no-sqlite", action="store_true", help="only PostgreSQL")
    parser.add_argument(
        "--collect-only",
        action="store_true",
        help="run only the collect step (reclaim.ingest.collect_into), once per repeat",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    parser.add_argument("--migrate", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(
            json.dumps(
                child(args.child, args.schema, Path(args.data), args.migrate, args.collect_only)
            )
        )
        return

    data = dataset(args.resources, args.days)
    print(
        f"data: {data} ({args.resources:,} resources, {args.days} days), "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )
    backends: list[str] = [] if args.no_sqlite else ["sqlite"]
    if args.postgres:
        backends.append("postgresql")
    results: dict[str, dict[str, list[dict[str, Any]]]] = {
        b: {"first": [], "again": []} for b in backends
    }
    loads = [os.getloadavg()[0]]
    for repeat in range(args.repeat):
        for backend in backends:
            with tempfile.TemporaryDirectory(dir=BENCH_OUT) as tmp:
                schema: str | None = None
                if backend == "sqlite":
                    url = f"sqlite:///{tmp}/e2e.db"
                else:
                    url = args.postgres
                    schema = fresh_postgres(url)
                try:
                    for label in ("first",) if args.collect_only else ("first", "again"):
                        run = spawn(
                            url,
                            schema,
                            data,
                            migrate=label == "first",
                            collect_only=args.collect_only,
                        )
                        results[backend][label].append(run)
                        steps = ", ".join(f"{k} {v:.1f}" for k, v in run["steps"].items())
                        print(
                            f"  [{repeat + 1}/{args.repeat}] {backend} {label}: "
                            f"{run['wall']:.1f} s ({steps}), CPU {run['cpu']:.1f} s, "
                            f"peak {run['peak_mib']:.0f} MiB, load {os.getloadavg()[0]:.1f}"
                            + (
                                f", longest wait for the write lock {run['lock_wait_max']:.1f} s"
                                if "lock_wait_max" in run
                                else ""
                            ),
                            flush=True,
                        )
                finally:
                    if schema is not None:
                        drop_postgres(url, schema)
        loads.append(os.getloadavg()[0])
    print(
        f"medians of {args.repeat}, load average {min(loads):.1f} - {max(loads):.1f} "
        f"(1-minute, sampled between repeats)"
    )
    for backend in backends:
        print(f"{backend}:")
        for label in ("first",) if args.collect_only else ("first", "again"):
            show(label, results[backend][label])


if __name__ == "__main__":
    main()
