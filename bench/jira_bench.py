"""Creating tickets against the Jira simulator limited to N requests/s, beside the `jira` library.

    python bench/jira_bench.py --tickets 10000 --limit 100 [--repeat 3] [--skip-jira-library]

The simulator runs in its own process (``reclaim jira-sim serve --rate-limit N``) so that the
client under test does not share an interpreter with it. Three ways to create the same tickets:

- ``reclaim bulk``: ``JiraClient.create_issues`` (50 per request), paced at the limit;
- ``reclaim single``: ``JiraClient.create_issue`` one by one, paced at the limit;
- ``reclaim single, 4 threads``: the same from 4 threads sharing one client (and its pacer),
  as the ``distribute`` map step runs its items;
- ``jira library``: ``JIRA.create_issue`` one by one, as a user would script it (the library
  also GETs each created issue, and waits out 429s with its own retry).

Per way: wall time, requests sent, requests/s as a share of the limit, tickets/s, and the 429s
the simulator answered (its own counter). Medians over the repeats (the jira library runs once:
it takes minutes), with the load average.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from reclaim.tickets import IssueDraft, JiraCredentials, connect

EMAIL, TOKEN = "bench@example.com", "bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def simulator(limit: float) -> Iterator[str]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "reclaim",
        "jira-sim",
        "serve",
        "--port",
        str(port),
        "--rate-limit",
        str(limit),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(400):
            try:
                httpx.get(f"{url}/_sim/stats", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def stats(url: str) -> dict[str, int]:
    return dict(httpx.get(f"{url}/_sim/stats").json())


def drafts(n: int, tag: str) -> list[IssueDraft]:
    return [
        IssueDraft("OPS", f"{tag} ticket {i}", labels=("reclaim", f"bench-{tag}")) for i in range(n)
    ]


def reclaim_bulk(url: str, n: int, limit: float) -> None:
    with connect(
        JiraCredentials.cloud(url, EMAIL, TOKEN), requests_per_second=limit, burst=10
    ) as jira:
        result = jira.create_issues(drafts(n, "bulk"))
        assert not result.failed


def reclaim_single(url: str, n: int, limit: float) -> None:
    with connect(
        JiraCredentials.cloud(url, EMAIL, TOKEN), requests_per_second=limit, burst=10
    ) as jira:
        for draft in drafts(n, "single"):
            jira.create_issue(draft)


def reclaim_threads(url: str, n: int, limit: float) -> None:
    """Four threads share one paced client, as the distribute map step's items do."""
    from concurrent.futures import ThreadPoolExecutor

    with (
        connect(
            JiraCredentials.cloud(url, EMAIL, TOKEN), requests_per_second=limit, burst=10
        ) as jira,
        ThreadPoolExecutor(4) as pool,
    ):
        list(pool.map(jira.create_issue, drafts(n, "threads")))


def jira_library(url: str, n: int, limit: float) -> None:
    from jira import JIRA

    client = JIRA(server=url, basic_auth=(EMAIL, TOKEN))
    try:
        for i in range(n):
            client.create_issue(
                project="OPS",
                summary=f"lib ticket {i}",
                issuetype={"name": "Task"},
                labels=["reclaim"],
            )
    finally:
        client.close()


def measure(way: Callable[[str, int, float], None], n: int, limit: float) -> dict[str, Any]:
    with simulator(limit) as url:
        time.sleep(1.1)  # a full bucket, as at the start of any quiet period
        before = stats(url)
        started = time.perf_counter()
        way(url, n, limit)
        wall = time.perf_counter() - started
        after = stats(url)
    requests = after["requests"] - before["requests"]
    return {
        "wall_s": round(wall, 2),
        "requests": requests,
        "requests_per_s": round(requests / wall, 1),
        "share_of_limit": round(requests / wall / limit, 3),
        "tickets_per_s": round(n / wall, 1),
        "throttled_429": after["throttled"] - before["throttled"],
        "issues": after["issues"],
    }


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--limit", type=float, default=100.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-jira-library", action="store_true")
    args = parser.parse_args()
    report: dict[str, Any] = {
        "tickets": args.tickets,
        "limit": args.limit,
        "load_before": os.getloadavg(),
    }
    ways: list[tuple[str, Callable[[str, int, float], None], int]] = [
        ("reclaim bulk", reclaim_bulk, args.repeat),
        ("reclaim single", reclaim_single, 1),
        ("reclaim single, 4 threads", reclaim_threads, 1),
    ]
    if not args.skip_jira_library:
        ways.append(("jira library", jira_library, 1))
    for name, way, repeat in ways:
        runs = [measure(way, args.tickets, args.limit) for _ in range(repeat)]
        report[name] = {**median_of(runs), "repeats": repeat}
        print(name, json.dumps(report[name]), flush=True)
    report["load_after"] = os.getloadavg()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
