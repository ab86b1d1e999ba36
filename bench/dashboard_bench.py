"""Server time of each dashboard page over N recommendations on SQLite, beside its bare SQL.

    python bench/dashboard_bench.py --rows 1000000

Builds (once, cached in bench/out/) a migrated SQLite database with N synthetic
recommendations across 40 teams, 200 accounts and 12 rules, a quarter ticketed, a tenth done
and realized, spread over 26 weeks, plus a durable run with 2,000 map items. Then, for each
page: the median wall and CPU time of the page served in process (FastAPI routing, SQL,
rendering) over 7 requests, and the median of the page's SQL alone (the query functions the
page calls, with nothing rendered). The overview is shown cold (recomputed every request) and
cached (its 30 s cache, what a person refreshing it gets).
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


def build(path: Path, rows: int) -> None:
    from reclaim.database import create_engine
    from reclaim.durable import DurableEngine, StepContext, Workflow
    from reclaim.store import upgrade

    engine = create_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    rng = random.Random(7)
    start = datetime(2026, 6, 1, tzinfo=UTC)
    statuses = ["open"] * 6 + ["ticketed"] * 2 + ["implemented", "dismissed"]
    fmt = "%Y-%m-%d %H:%M:%S.%f"
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")

    def row(n: int) -> tuple[object, ...]:
        status = statuses[n % len(statuses)]
        first = start + timedelta(minutes=rng.randrange(26 * 7 * 24 * 60))
        saving = round(rng.lognormvariate(3, 1.2), 2)
        ticketed = (first + timedelta(days=3)).strftime(fmt) if status != "open" else None
        done = status == "implemented"
        return (
            f"{n:064x}",
            f"rule-{n % 12}",
            f"i-{n:012d}",
            f"{100000000000 + n % 200}",
            f"vm-{n}",
            "vm",
            "eu-west-1",
            f"team-{n % 40}",
            f"Stop idle vm-{n}",
            status,
            saving,
            "USD",
            first.strftime(fmt),
            (first + timedelta(days=7)).strftime(fmt),
            1,
            first.strftime(fmt),
            ticketed,
            (first + timedelta(days=10)).strftime(fmt) if done else None,
            (first + timedelta(days=14)).strftime(fmt) if done else None,
            round(saving * 0.9, 2) if done else None,
            1,
        )

    insert = (
        "INSERT INTO recommendations (fingerprint, rule_id, resource_id, account_id, resource_name,"
        " kind, region, owner, title, status, monthly_savings, currency, first_seen, last_seen,"
        " times_seen, status_changed_at, ticketed_at, ticket_done_at, implemented_at,"
        " realized_monthly_savings, version) VALUES (" + ",".join("?" * 21) + ")"
    )
    for chunk in range(0, rows, 100_000):
        con.executemany(insert, (row(n) for n in range(chunk, min(rows, chunk + 100_000))))
        con.commit()
    con.execute("ANALYZE")
    con.commit()
    con.close()

    flow = Workflow("bench.dashboard", register=False)

    @flow.step()
    def plan(ctx: StepContext) -> list[int]:
        return list(range(2000))

    @flow.map_step(over="plan", key=str)
    def item(ctx: StepContext, value: int) -> int:
        return value

    engine = create_engine(f"sqlite:///{path}")
    DurableEngine(engine, workflows=[flow]).run_workflow(flow, run_id="bench-run")
    engine.dispose()


def median_times(call: Callable[[], object], repeat: int) -> tuple[float, float]:
    call()  # warm: templates compiled, pages of the file in the OS cache
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls) * 1000, statistics.median(cpus) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    path = OUT / f"dashboard-{args.rows}.db"
    if not path.exists():
        started = time.perf_counter()
        build(path, args.rows)
        print(f"built {path} in {time.perf_counter() - started:.0f} s")

    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

    from reclaim.dashboard import queries, standalone_app
    from reclaim.dashboard.queries import Cursor, ListFilters
    from reclaim.database import create_engine

    # The pages read through a read-only engine (see reclaim.dashboard.routes.reader_of); the
    # bare SQL is timed on one too.
    engine = create_engine(f"sqlite:///{path}", read_only=True)
    cold = TestClient(standalone_app(f"sqlite:///{path}", overview_ttl=0))
    warm = TestClient(standalone_app(f"sqlite:///{path}", overview_ttl=3600))

    # A cursor 200 pages deep, found by walking there once.
    deep: Cursor | None = None
    for _ in range(200):
        deep = queries.list_recommendations(engine, ListFilters(), deep, count=False).next
    assert deep is not None
    some_id = queries.list_recommendations(engine, ListFilters(size=25), None).rows[0].id

    def get(client: TestClient, url: str) -> Callable[[], object]:
        def call() -> object:
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            return response

        return call

    owner = ListFilters(owner="team-7", sort="-savings")
    pages: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
        ("overview (cold)", get(cold, "/"), lambda: queries.load_overview(engine)),
        ("overview (cached)", get(warm, "/"), lambda: None),
        (
            "recommendations, first page",
            get(cold, "/recommendations"),
            lambda: queries.list_recommendations(engine, ListFilters(), None),
        ),
        (
            "recommendations, page 201",
            get(cold, "/recommendations?page=" + deep.encode()),
            lambda: queries.list_recommendations(engine, ListFilters(), deep),
        ),
        (
            "recommendations, status=ticketed",
            get(cold, "/recommendations?status=ticketed"),
            lambda: queries.list_recommendations(engine, ListFilters(status="ticketed"), None),
        ),
        (
            "recommendations, team, smallest first",
            get(cold, "/recommendations?owner=team-7&sort=-savings"),
            lambda: queries.list_recommendations(engine, owner, None),
        ),
        (
            "recommendation detail",
            get(cold, f"/recommendations/{some_id}"),
            lambda: queries.recommendation_row(engine, some_id),
        ),
        ("runs", get(cold, "/runs"), lambda: queries.runs_page(engine)),
        ("run with 2,000 items", get(cold, "/runs/bench-run"), lambda: None),
        ("sync health", get(cold, "/sync"), lambda: queries.load_sync_health(engine)),
    ]
    load = os.getloadavg()
    print(f"{args.rows:,} recommendations on SQLite; load average {load[0]:.1f} {load[1]:.1f}")
    print(f"{'page':40} {'page ms':>9} {'page cpu':>9} {'SQL ms':>8} {'page/SQL':>9}")
    for name, page, sql in pages:
        # The cold overview reads the whole table: 3 samples of it are enough.
        repeat = 3 if name == "overview (cold)" else args.repeat
        wall, cpu = median_times(page, repeat)
        sql_wall, _ = median_times(sql, repeat)
        ratio = f"{wall / sql_wall:8.1f}x" if sql_wall > 0.05 else "        -"
        print(f"{name:40} {wall:9.1f} {cpu:9.1f} {sql_wall:8.1f} {ratio}")


if __name__ == "__main__":
    main()
