"""Creating tickets against the Jira simulator limited to N requests/s, beside the `jira` library.

    python bench/jira_bench.py --tickets 10000 --limit 100 [--repeat 3] [--skip-jira-library]
        [--ways bulk,single,threads,distribute,jira]
    python bench/jira_bench.py --poll 100000 [--page-size 100]

The simulator runs in its own process (``reclaim jira-sim serve --rate-limit N``) so that the
client under test does not share an interpreter with it. Three ways to create the same tickets:

- ``reclaim bulk``: ``JiraClient.create_issues`` (50 per request), paced at the limit;
- ``reclaim single``: ``JiraClient.create_issue`` one by one, paced at the limit;
- ``reclaim single, 4 threads``: the same from 4 threads sharing one client (and its pacer),
  as the ``distribute`` map step runs its items;
- ``reclaim distribute workflow``: the ``reclaim.tickets.distribute`` durable workflow over N
  stored recommendations in a SQLite file (intent, create, record and checkpoint per item,
  four items at a time sharing one paced client): the whole product path;
- ``jira library``: ``JIRA.create_issue`` one by one, as a user would script it (the library
  also GETs each created issue, and waits out 429s with its own retry).

``--poll N`` measures the inbound poll instead: N issues carrying reclaim's label in the
simulator (no rate limit) and N ticket rows in a SQLite file, then one ``Poller.poll`` in a
fresh process reads them all (wall, CPU, peak RSS of that process).

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
def simulator(limit: float | None) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "reclaim", "jira-sim", "serve", "--port", str(port)]
    if limit:
        command += ["--rate-limit", str(limit)]
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


def _database(directory: str, n: int) -> str:
    """A migrated SQLite file with ``n`` open recommendations; returns its URL."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from reclaim.database import create_engine
    from reclaim.store import upgrade
    from reclaim.store.tables.recommend import recommendations

    url = f"sqlite:///{directory}/bench.db"
    engine = create_engine(url)
    upgrade(engine)
    now = datetime.now(UTC)
    rows = [
        {
            "fingerprint": f"{i:016x}",
            "rule_id": "idle-vm",
            "resource_id": f"i-{i}",
            "account_id": "111111111111",
            "title": "Stop idle VM",
            "status": "open",
            "monthly_savings": Decimal(100 + i % 500),
            "currency": "USD",
            "params": {},
            "first_seen": now,
            "last_seen": now,
            "times_seen": 1,
            "status_changed_at": now,
            "version": 1,
        }
        for i in range(n)
    ]
    with engine.begin() as connection:
        connection.execute(recommendations.insert(), rows)
    engine.dispose()
    return url


def reclaim_distribute(url: str, n: int, limit: float) -> None:
    """The durable distribute workflow, as ``reclaim tickets distribute`` runs it."""
    import tempfile

    from reclaim.database import create_engine
    from reclaim.durable import DurableEngine
    from reclaim.sync import distribute_workflow

    os.environ.update(
        {"RECLAIM_JIRA_URL": url, "RECLAIM_JIRA_EMAIL": EMAIL, "RECLAIM_JIRA_API_TOKEN": TOKEN}
    )
    with tempfile.TemporaryDirectory() as directory:
        engine = create_engine(_database(directory, n))
        options = {"default_project": "OPS", "grace": 0.0, "requests_per_second": limit}
        started = time.perf_counter()
        result = DurableEngine(engine).run_workflow(distribute_workflow, options)
        print(f"  (distribute: {time.perf_counter() - started:.1f} s inside the workflow)")
        # One output per map item: before batching a key per ticket, after a chunk's keys.
        outputs = list(dict(result or {}).values())
        created = sum(len(o.keys) if hasattr(o, "refused") else 1 for o in outputs)
        assert created == n, (created, n)
        engine.dispose()


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


def _high_water_mb() -> int:
    """This process's peak RSS. Not ``ru_maxrss``: Linux carries it over from the parent."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    return 0


def poll_child(jira_url: str, db_url: str, page_size: int) -> None:
    """In a fresh process: one poll over everything, with its wall, CPU and peak RSS."""
    from reclaim.database import create_engine
    from reclaim.sync import Poller

    engine = create_engine(db_url)
    rss_before = _high_water_mb()
    with connect(JiraCredentials.cloud(jira_url, EMAIL, TOKEN), requests_per_second=None) as jira:
        cpu, started = time.process_time(), time.perf_counter()
        result = Poller(jira, engine, lag_ms=0, page_size=page_size).poll()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = _high_water_mb()
    print(
        json.dumps(
            {
                "issues_read": result.seen,
                "applied": result.applied,
                "pages": result.pages,
                "wall_s": round(wall, 1),
                "cpu_s": round(cpu, 1),
                "issues_per_s": round(result.seen / wall),
                "peak_rss_mb": peak,
                "peak_rss_before_poll_mb": rss_before,
            }
        )
    )


def measure_poll(n: int, page_size: int) -> dict[str, Any]:
    import tempfile
    from datetime import UTC, datetime

    from reclaim.database import create_engine
    from reclaim.store import upgrade
    from reclaim.store.tables.sync import tickets

    with simulator(None) as url, tempfile.TemporaryDirectory() as directory:
        db_url = f"sqlite:///{directory}/poll.db"
        engine = create_engine(db_url)
        upgrade(engine)
        creds = JiraCredentials.cloud(url, EMAIL, TOKEN)
        with connect(creds, requests_per_second=None) as jira:
            keys: list[str] = []
            for start in range(0, n, 1000):
                batch = [
                    IssueDraft("OPS", f"issue {i}", labels=("reclaim", f"reclaim-fp-{i:016x}"))
                    for i in range(start, min(n, start + 1000))
                ]
                keys += [c.key for c in jira.create_issues(batch).created if c is not None]
        now = datetime.now(UTC)
        with engine.begin() as connection:
            connection.execute(
                tickets.insert(),
                [
                    {
                        "fingerprint": f"{i:016x}",
                        "state": "created",
                        "system": "jira",
                        "project": "OPS",
                        "key": key,
                        "intent_at": now,
                        "attempts": 1,
                    }
                    for i, key in enumerate(keys)
                ],
            )
        engine.dispose()
        time.sleep(1.0)  # the simulator's clock must pass the newest update (lag 0)
        child = subprocess.run(
            [sys.executable, __file__, "--poll-child", url, db_url, str(page_size)],
            check=True,
            capture_output=True,
            text=True,
        )
    return {"issues": n, "page_size": page_size, **json.loads(child.stdout.splitlines()[-1])}


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
    parser.add_argument("--ways", default="bulk,single,threads,jira")
    parser.add_argument("--poll", type=int, default=0, help="measure the poll of N issues")
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--poll-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.poll_child:
        url, db_url, page_size = args.poll_child
        poll_child(url, db_url, int(page_size))
        return
    if args.poll:
        load = os.getloadavg()
        result = measure_poll(args.poll, args.page_size)
        print(json.dumps({**result, "load_before": load, "load_after": os.getloadavg()}))
        return
    report: dict[str, Any] = {
        "tickets": args.tickets,
        "limit": args.limit,
        "load_before": os.getloadavg(),
    }
    known: dict[str, tuple[str, Callable[[str, int, float], None], int]] = {
        "bulk": ("reclaim bulk", reclaim_bulk, args.repeat),
        "single": ("reclaim single", reclaim_single, 1),
        "threads": ("reclaim single, 4 threads", reclaim_threads, 1),
        "distribute": ("reclaim distribute workflow", reclaim_distribute, 1),
        "jira": ("jira library", jira_library, 1),
    }
    chosen = [w for w in args.ways.split(",") if w and not (w == "jira" and args.skip_jira_library)]
    ways = [known[w] for w in chosen]
    for name, way, repeat in ways:
        runs = [measure(way, args.tickets, args.limit) for _ in range(repeat)]
        report[name] = {**median_of(runs), "repeats": repeat}
        print(name, json.dumps(report[name]), flush=True)
    report["load_after"] = os.getloadavg()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
