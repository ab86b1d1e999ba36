"""The whole weekly loop: files → recommendations → Jira tickets → report, on SQLite.

    python bench/loop_bench.py --resources 100000 --days 7 --tickets 10000 [--repeat 3]
        [--ticket-batch N]

Data: reclaim's generator (``generate_sample``, cached under ``bench/out/``). Jira: the bundled
simulator in its own process (``reclaim jira-sim serve``, no rate limit, no latency), a fresh one
per repeat. Each repeat runs, in a fresh subprocess so that the peak RSS (VmHWM) is its own:

- ``loop``: a fresh SQLite file, then ``reclaim.pipeline.run_weekly`` with a Jira connection and
  ``ticket_limit`` tickets: collect → sync back → evaluate → select → distribute (the durable
  map step, one checkpointed item per chunk of up to 50 tickets, one bulk create each, exactly
  once) → report;
- ``bare``: the floor for the ticket part, side by side: the same number of
  ``JiraClient.create_issue`` calls on four threads (the map step's concurrency) against a fresh
  simulator, with no intent row, no label search, no checkpoint.

Printed: wall time, CPU, peak RSS, the duration of each durable step, tickets per second of
``distribute`` and of ``bare``, and their ratio; medians over the repeats, with the load average.
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
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

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


def loop_child(url: str, data: Path, db: Path, tickets: int, batch: str) -> dict[str, Any]:
    from reclaim.config import JiraConfig
    from reclaim.database import create_engine
    from reclaim.durable import DurableEngine
    from reclaim.pipeline import WeeklyInput, run_weekly
    from reclaim.store import upgrade

    engine = create_engine(f"sqlite:///{db}")
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
    run = run_weekly(engine, spec)
    wall = time.perf_counter() - started
    steps = {
        step.step: step.duration
        for step in DurableEngine(engine).steps(run.run_id)
        if not step.item_key
    }
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--ticket-batch", help="tickets per distribute map item (default: the pipeline's)"
    )
    parser.add_argument("--child", nargs="+")
    options = parser.parse_args()
    if options.child:
        mode, *args = options.child
        if mode == "loop":
            result = loop_child(args[0], Path(args[1]), Path(args[2]), int(args[3]), args[4])
        else:
            result = bare_child(args[0], int(args[1]))
        print(json.dumps(result))
        return

    data = dataset(options.resources, options.days)
    loops: list[dict[str, Any]] = []
    bares: list[dict[str, Any]] = []
    loads = [os.getloadavg()[0]]
    for _ in range(options.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            sim, url = start_simulator()
            try:
                loops.append(
                    run_child(
                        "loop",
                        url,
                        str(data),
                        str(Path(tmp) / "r.db"),
                        str(options.tickets),
                        options.ticket_batch or "-",
                    )
                )
            finally:
                sim.kill()
                sim.wait()
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
    print(f"loop peak   {median([r['peak_mib'] for r in loops]) / 1024:8.2f} GiB")
    for step in first["steps"]:
        times = [r["steps"][step] for r in loops if r["steps"].get(step) is not None]
        if times:
            print(f"  {step:<11} {median(times):8.1f} s")
    distribute = median([r["steps"]["distribute"] for r in loops])
    bare = median([r["wall"] for r in bares])
    tickets = options.tickets
    print(
        f"tickets/s   distribute {tickets / distribute:,.0f}  bare create_issue"
        f" {tickets / bare:,.0f}  ratio {distribute / bare:.2f}x the bare time"
    )


if __name__ == "__main__":
    main()
