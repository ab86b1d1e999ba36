"""The Jira simulator's CPU per created ticket, under concurrent 50-issue bulk creates.

    python bench/simulator_bench.py [--tickets 20000] [--clients 8] [--latency 0.05]
        [--repeat 3] [--src before=/tmp/main/src --src after=src]
    python bench/simulator_bench.py --profile [--tickets 4000] [--clients 8]

The simulator runs in its own process (``reclaim jira-sim serve``, as ``service_bench.py
workers`` runs it), one process per ``--src`` tree (``PYTHONPATH`` set to it), the trees taken
in turn ``--repeat`` times. ``--clients`` threads post bulk creates of 50 issues whose bodies are
what a worker sends for the recommendations ``service_bench.py`` fills (the default templates,
ADF descriptions, ~80 KB a request). Per run: the simulator's CPU (user + system from /proc)
per created ticket and per request, wall, requests/s, the issues it holds afterwards (asserted
equal to the tickets sent) and the load average. Medians per tree at the end.

``--profile``: the simulator of this tree in a thread of this process (``run_in_thread``),
cProfile on its event loop's thread only, the top functions by own time.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import json
import os
import pstats
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

import service_bench
from reclaim.tickets import IssueDraft
from reclaim.tickets.templates import TicketTemplates, markup_to_document
from service_bench import cpu_seconds, load

BULK = 50
AUTH = ("bench@example.com", "bench")


def bulk_bodies(tickets: int) -> list[bytes]:
    """The request bodies a worker sends for ``tickets`` recommendations, 50 per request."""
    templates = TicketTemplates({})
    bodies = []
    for start in range(0, tickets, BULK):
        updates = []
        for n in range(start + 1, min(tickets, start + BULK) + 1):
            saving = ((n * 7919) % 100000) / 100.0
            facts = {
                "fingerprint": f"{n:032x}",
                "rule_id": f"rule-{n % 20}",
                "resource_id": f"i-{n}",
                "account_id": f"acct-{n % 50}",
                "resource_name": f"vm-{n}",
                "kind": "vm",
                "region": "eu-west-1",
                "owner": f"team-{n % 30}",
                "title": f"Stop idle vm {n}",
                "monthly_savings": saving,
                "cost_30d": saving * 2,
                "currency": "USD",
                "tags": {},
                "params": {},
            }
            rendered = templates.render(facts)
            draft = IssueDraft(
                project="OPS",
                summary=rendered.summary,
                issue_type="Task",
                description=markup_to_document(rendered.markup),
                labels=(*rendered.labels, f"reclaim-fp-{n:032x}"[:255]),
            )
            fields: dict[str, Any] = {
                "project": {"key": draft.project},
                "summary": draft.summary,
                "issuetype": {"name": draft.issue_type},
                "labels": list(draft.labels),
            }
            if draft.description is not None:
                fields["description"] = draft.description.to_adf()
            updates.append({"fields": fields})
        bodies.append(json.dumps({"issueUpdates": updates}).encode())
    return bodies


def post_all(url: str, bodies: list[bytes], clients: int) -> float:
    """Post every body from ``clients`` threads; the wall seconds taken."""
    local = threading.local()

    def post(body: bytes) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(auth=AUTH, timeout=120)
        response = client.post(
            f"{url}/rest/api/3/issue/bulk",
            content=body,
            headers={"Content-Type": "application/json"},
        )
        answer = response.json()
        if response.status_code != 201 or answer["errors"]:
            raise RuntimeError(f"bulk create failed: {response.status_code} {answer}")

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(post, bodies))
    return time.perf_counter() - started


def simulator(src: str, latency: float) -> contextlib.AbstractContextManager[tuple[str, int]]:
    """``service_bench``'s simulator process, with ``src`` first on its ``PYTHONPATH``."""
    # The rest of PYTHONPATH stays (packages installed beside the venv).
    paths = [str(Path(src).resolve()), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    return service_bench.simulator(
        latency, env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    )


def run_once(
    src: str, bodies: list[bytes], tickets: int, args: argparse.Namespace
) -> dict[str, Any]:
    with simulator(src, args.latency) as (url, pid):
        # One small request first: imports and first-call costs are not per ticket.
        post_all(url, bulk_bodies(BULK), 1)
        cpu_before = cpu_seconds(pid)
        wall = post_all(url, bodies, args.clients)
        cpu = cpu_seconds(pid) - cpu_before
        held = httpx.get(f"{url}/_sim/stats", timeout=30).json()["issues"]
    if held != tickets + BULK:
        raise RuntimeError(f"the simulator holds {held} issues, {tickets + BULK} were sent")
    return {
        "cpu_ms_ticket": cpu * 1000 / tickets,
        "cpu_ms_request": cpu * 1000 / len(bodies),
        "wall_s": wall,
        "requests_s": len(bodies) / wall,
        "load": load(),
    }


def profile(args: argparse.Namespace) -> None:
    from reclaim.tickets.simulator import FaultPlan, SimulatorApp, run_in_thread

    # CPU time of the server's thread, not wall time: the machine is shared.
    profiler = cProfile.Profile(time.thread_time)
    app = SimulatorApp(faults=FaultPlan(latency=args.latency))
    inner = app.asgi
    wanted = {"on": False, "enabled": False, "cpu": 0.0}

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        # cProfile sees only the thread that enables it: switch it from the server's loop.
        if wanted["on"] != wanted["enabled"]:
            if wanted["on"]:
                wanted["cpu"] = time.thread_time()
                profiler.enable()
            else:
                profiler.disable()
                wanted["cpu"] = time.thread_time() - wanted["cpu"]
            wanted["enabled"] = wanted["on"]
        await inner(scope, receive, send)

    app.asgi = asgi  # type: ignore[method-assign]
    gc.freeze()
    with run_in_thread(app) as sim:
        post_all(sim.url, bulk_bodies(BULK), 1)
        wanted["on"] = True
        # The clients in another process, so that they do not take this one's GIL.
        command = [sys.executable, __file__, "--post", sim.url, "--tickets", str(args.tickets)]
        subprocess.run([*command, "--clients", str(args.clients)], check=True)
        wanted["on"] = False
        httpx.get(f"{sim.url}/_sim/stats", timeout=30)
    tickets = args.tickets - args.tickets % BULK
    print(f"server thread CPU: {wanted['cpu'] * 1000 / tickets:.4f} ms/ticket (profiled)")
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=20000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--src", action="append", default=[], help="NAME=path/to/src")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--post", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    tickets = args.tickets - args.tickets % BULK
    bodies = bulk_bodies(tickets)
    print(
        f"{tickets} tickets in {len(bodies)} requests of {BULK}, "
        f"{statistics.mean(map(len, bodies)) / 1024:.1f} KiB each, {args.clients} clients, "
        f"latency {args.latency} s, {os.cpu_count()} cores, load {load()}",
        flush=True,
    )
    if args.post:
        post_all(args.post, bodies, args.clients)
        return
    if args.profile:
        profile(args)
        return
    trees = [tuple(s.split("=", 1)) for s in args.src] or [("this", "src")]
    results: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in trees}
    header = (
        f"{'tree':<8} {'sim ms/ticket':>13} {'ms/request':>10} {'wall s':>7} {'req/s':>7}  load"
    )
    print(header)
    for _ in range(args.repeat):
        for name, src in trees:
            row = run_once(src, bodies, tickets, args)
            results[name].append(row)
            print(
                f"{name:<8} {row['cpu_ms_ticket']:13.3f} {row['cpu_ms_request']:10.2f} "
                f"{row['wall_s']:7.2f} {row['requests_s']:7.1f}  {row['load']}",
                flush=True,
            )
    print("medians:")
    for name, rows in results.items():
        print(
            f"{name:<8} "
            f"{statistics.median(r['cpu_ms_ticket'] for r in rows):13.3f} "
            f"{statistics.median(r['cpu_ms_request'] for r in rows):10.2f} "
            f"{statistics.median(r['wall_s'] for r in rows):7.2f} "
            f"{statistics.median(r['requests_s'] for r in rows):7.1f}"
        )


if __name__ == "__main__":
    main()
