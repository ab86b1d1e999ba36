"""The whole weekly loop: files → recommendations → Jira tickets → report, on SQLite.

    python bench/loop_bench.py --resources 100000 --days 7 --tickets 10000 [--repeat 3]
        [--ticket-batch N] [--postgres URL] [--skip-bare]

Data: reclaim's generator (``generate_sample``, cached under ``bench/out/``). Jira: the bundled
simulator in its own process (``reclaim jira-sim serve``, no rate limit, no latency), a fresh one
per repeat. Each repeat runs, in a fresh subprocess so that the peak RSS (VmHWM) is its own:

- ``loop``: a fresh SQLite file (or, with ``--postgres``, a fresh schema there), then
  ``reclaim.pipeline.run_weekly`` with a Jira connection and ``ticket_limit`` tickets: collect →
  sync back → evaluate → write back → select → distribute (the durable map step, one
  checkpointed item per chunk of up to 50 tickets, one bulk create each, exactly once) → report.
  A thread samples the process's resident memory and CPU time every 20 ms, so each step gets
  its own CPU time and its peak RSS (the highest sample between the step's start and finish as
  the durable engine recorded them; memory a step keeps after it ends counts in the next ones);
  on SQLite another thread takes the write lock once a second and records its longest wait;
- ``bare``: the floor for the ticket part, side by side: the same number of
  ``JiraClient.create_issue`` calls on four threads (the map step's concurrency) against a fresh
  simulator, with no intent row, no label search, no checkpoint.

Printed: wall time, CPU, peak RSS (VmHWM), each durable step's wall, CPU and peak RSS, tickets
per second of ``distribute`` and of ``bare``, and their ratio; medians over the repeats, with the
load average.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from e2e_bench import LockProbe, drop_postgres, fresh_postgres

BENCH_OUT = Path(__file__).resolve().parent / "out"
TOKEN_ENV = "RECLAIM_BENCH_JIRA_TOKEN"


def dataset(resources: int, days: int) -> Path:
    from reclaim.ingest import generate_sample

    folder = BENCH_OUT / f"e2e_{resources}x{days}"
    if (folder / "DONE").exists():
        return folder
    files = generate_sample(
        folder, resources=resources, days=days, seed=5, table_format="parquet", progress=print
    )
    (folder / "DONE").write_text(f"{files.billing_rows}\n")
    return folder


def peak_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Sampler:
    """Samples (wall clock, process CPU, RSS) every 20 ms from a thread, to split by step."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> None:
        self.samples.append((time.time(), time.process_time(), rss_mib()))

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self._sample()

    def between(self, start: float, end: float) -> tuple[float, float]:
        """CPU seconds and peak RSS (MiB) between two wall-clock instants."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        before = [s for s in self.samples if s[0] <= start] or self.samples[:1]
        after = [s for s in self.samples if s[0] >= end] or self.samples[-1:]
        cpu = after[0][1] - before[-1][1]
        # The samples either side bound the step too: a step shorter than 20 ms has none inside.
        peak = max(s[2] for s in [before[-1], *inside, after[0]])
        return cpu, peak


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_simulator() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "reclaim", "jira-sim", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the simulator did not start")


def loop_child(url: str, data: Path, db: str, tickets: int, batch: str) -> dict[str, Any]:
    from reclaim.config import JiraConfig
    from reclaim.database import create_engine
    from reclaim.durable import DurableEngine
    from reclaim.pipeline import WeeklyInput, run_weekly
    from reclaim.store import upgrade

    database, _, schema = db.partition("#")
    engine = create_engine(database, schema=schema or None)
    upgrade(engine)
    spec = WeeklyInput(
        billing=[str(data / "billing")],
        inventory=[str(data / "inventory.parquet")],
        utilization=[str(data / "utilization.parquet")],
        jira=JiraConfig(
            url=url,
            email="bench@example.com",
            api_token_env=TOKEN_ENV,
            requests_per_second=None,
            grace_seconds=0.0,
        ),
        default_project="OPS",
        ticket_limit=tickets,
        poll_lag_seconds=0.0,
    )
    if batch != "-":
        spec = spec.model_copy(update={"ticket_batch": int(batch)})
    cpu0 = time.process_time()
    started = time.perf_counter()
    with Sampler() as sampler:
        run = run_weekly(engine, spec)
    wall = time.perf_counter() - started
    steps: dict[str, dict[str, float | None]] = {}
    for step in DurableEngine(engine).steps(run.run_id):
        if step.item_key or step.started_at is None or step.finished_at is None:
            continue
        cpu, peak = sampler.between(step.started_at.timestamp(), step.finished_at.timestamp())
        steps[step.step] = {"wall": step.duration, "cpu": cpu, "peak_mib": peak}
    engine.dispose()
    return {
        "wall": wall,
        "cpu": time.process_time() - cpu0,
        "peak_mib": peak_mib(),
        "steps": steps,
        "resources": run.collect.resources,
        "found": run.report.loop.found,
        "tickets": run.distribute.created,
    }


def bare_child(url: str, tickets: int) -> dict[str, Any]:
    from reclaim.tickets import IssueDraft, JiraCredentials, connect
    from reclaim.tickets.document import Document

    client = connect(JiraCredentials.cloud(url, "bench@example.com", "t"), requests_per_second=None)

    def create(n: int) -> str:
        draft = IssueDraft(
            project="OPS",
            summary=f"Stop idle VM i-{n:012d}",
            issue_type="Task",
            description=Document.of_text("Idle for 30 days."),
            labels=("reclaim",),
        )
        return client.create_issue(draft).key

    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        keys = list(pool.map(create, range(tickets)))
    wall = time.perf_counter() - started
    return {"wall": wall, "tickets": len(set(keys)), "peak_mib": peak_mib()}


def run_child(mode: str, *args: str) -> dict[str, Any]:
    env = {**os.environ, TOKEN_ENV: "bench"}
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, *args],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def run_loop(options: argparse.Namespace, data: Path, url: str) -> dict[str, Any]:
    args = [str(data), str(options.tickets), options.ticket_batch or "-"]
    if options.postgres:
        schema = fresh_postgres(options.postgres)
        try:
            return run_child("loop", url, args[0], f"{options.postgres}#{schema}", *args[1:])
        finally:
            drop_postgres(options.postgres, schema)
    with tempfile.TemporaryDirectory(dir=options.tmp) as tmp:
        db = Path(tmp) / "r.db"
        with LockProbe(str(db)) as probe:
            result = run_child("loop", url, args[0], f"sqlite:///{db}", *args[1:])
        result["lock_wait_max"] = probe.longest
        result["lock_failed"] = probe.failed
        return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--ticket-batch", help="tickets per distribute map item (default: the pipeline's)"
    )
    parser.add_argument("--postgres", help="run on this PostgreSQL (a fresh schema) not SQLite")
    parser.add_argument("--skip-bare", action="store_true", help="no bare create_issue peer")
    parser.add_argument("--tmp", help="folder for the SQLite file (default: the system's)")
    parser.add_argument("--child", nargs="+")
    options = parser.parse_args()
    if options.child:
        mode, *args = options.child
        if mode == "loop":
            result = loop_child(args[0], Path(args[1]), args[2], int(args[3]), args[4])
        else:
            result = bare_child(args[0], int(args[1]))
        print(json.dumps(result))
        return

    data = dataset(options.resources, options.days)
    loops: list[dict[str, Any]] = []
    bares: list[dict[str, Any]] = []
    loads = [os.getloadavg()[0]]
    for _ in range(options.repeat):
        sim, url = start_simulator()
        try:
            loops.append(run_loop(options, data, url))
        finally:
            sim.kill()
            sim.wait()
        loads.append(os.getloadavg()[0])
        if options.skip_bare:
            continue
        sim, url = start_simulator()
        try:
            bares.append(run_child("bare", url, str(options.tickets)))
        finally:
            sim.kill()
            sim.wait()
        loads.append(os.getloadavg()[0])

    def median(values: list[float]) -> float:
        return statistics.median(values)

    first = loops[0]
    print(
        f"{first['resources']:,} resources, {first['found']:,} recommendations,"
        f" {first['tickets']:,} tickets; repeats {options.repeat};"
        f" 1-min load {min(loads):.1f} to {max(loads):.1f}"
    )
    print(f"loop wall   {median([r['wall'] for r in loops]):8.1f} s")
    print(f"loop CPU    {median([r['cpu'] for r in loops]):8.1f} s (this process; Jira apart)")
    print(f"loop peak   {median([r['peak_mib'] for r in loops]) / 1024:8.2f} GiB (VmHWM)")
    if "lock_wait_max" in first:
        print(
            f"write lock  longest wait of a probe {max(r['lock_wait_max'] for r in loops):.1f} s,"
            f" {sum(r['lock_failed'] for r in loops)} probes refused"
        )
    print(f"  {'step':<11} {'wall':>8} {'CPU':>8} {'peak RSS':>9}")
    for step in first["steps"]:
        figures = [r["steps"][step] for r in loops if r["steps"].get(step)]
        walls = [f["wall"] for f in figures if f["wall"] is not None]
        if walls:
            cpu = median([f["cpu"] for f in figures])
            peak = median([f["peak_mib"] for f in figures]) / 1024
            print(f"  {step:<11} {median(walls):8.1f} {cpu:8.1f} {peak:7.2f} GiB")
    distribute = median([r["steps"]["distribute"]["wall"] for r in loops])
    tickets = options.tickets
    if not bares:
        print(f"tickets/s   distribute {tickets / distribute:,.0f}")
        return
    bare = median([r["wall"] for r in bares])
    print(
        f"tickets/s   distribute {tickets / distribute:,.0f}  bare create_issue"
        f" {tickets / bare:,.0f}  ratio {distribute / bare:.2f}x the bare time"
    )


if __name__ == "__main__":
    main()
