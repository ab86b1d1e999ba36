"""A distribute chunk's CPU, phase by phase, in one process: the worker's share and PostgreSQL's.

    python bench/ticket_chunk_bench.py [--tickets 4000] [--postgres-url URL]

``--tickets`` open recommendations in a fresh PostgreSQL database, the select step's routing
and rendering done up front, then ``reclaim.sync.distribute_batch`` chunk after chunk (50 each)
against the Jira simulator in its own process answering at once, as a worker's map item runs
it (its input decoded from the checkpoint's JSON). Printed per ticket: this process's CPU, split
by phase (each phase timed with ``process_time``; one thread, so it is the phase's own), the
simulator's, and the CPU of the database's client backends (from /proc); then the sequential
scans of ``tickets`` and the rows they read. No durable engine, pump or threads: what a chunk
itself costs, for profiling the ticket path (``service_bench.py workers`` measures the whole).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import gc
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from service_bench import (
    DEFAULT_PG,
    cpu_seconds,
    database,
    fill_recommendations,
    simulator,
)

PHASES = (
    ("reclaim.sync.distribution", None, "plan_of"),
    ("reclaim.sync.ledger", "TicketLedger", "claim_intents"),
    ("reclaim.tickets.jira", "JiraClient", "create_issues"),
    ("reclaim.tickets.jira", "JiraClient", "_create_body"),
    ("reclaim.sync.ledger", "TicketLedger", "record_created"),
    ("reclaim.recommend.store", "RecommendationStore", "apply_event_to_many"),
)


def client_backends_cpu(connection: sa.Connection) -> dict[int, float]:
    pids = connection.execute(
        sa.text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend'"
        )
    ).scalars()
    seen: dict[int, float] = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            seen[int(pid)] = cpu_seconds(int(pid))
    return seen


def timed_phases(spent: collections.Counter[str]) -> None:
    """Wrap each phase's function so its CPU adds up in ``spent``."""
    import importlib

    for module_name, owner_name, name in PHASES:
        module = importlib.import_module(module_name)
        owner: Any = getattr(module, owner_name) if owner_name else module
        original: Callable[..., Any] = getattr(owner, name)

        def wrapper(
            *args: Any, _f: Callable[..., Any] = original, _n: str = name, **kwargs: Any
        ) -> Any:
            started = time.process_time()
            try:
                return _f(*args, **kwargs)
            finally:
                spent[_n] += time.process_time() - started

        setattr(owner, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=4000)
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    args = parser.parse_args()

    import reclaim.sync.distribution as distribution
    from reclaim.database import create_engine
    from reclaim.recommend import RecommendationStore
    from reclaim.tickets.routing import load_routing
    from reclaim.tickets.templates import load_templates

    with database("postgresql", args.postgres_url) as url, simulator(0.0) as (jira, sim_pid):
        fill_recommendations(url, args.tickets)
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE recommendations SET status = 'open'"))
        records = RecommendationStore(engine).find(
            statuses=list(distribution.TICKETABLE), limit=None
        )
        items = distribution.plan_items(
            [r for r in records if distribution.needs_ticket(r)],
            load_routing(None, default_project="OPS"),
            load_templates(None),
        )
        payloads = [b.model_dump(mode="json") for b in distribution.batch_items(items, 50)]
        os.environ.update(
            RECLAIM_JIRA_URL=jira,
            RECLAIM_JIRA_EMAIL="bench@example.com",
            RECLAIM_JIRA_API_TOKEN="x",
        )
        client = distribution.shared_client(
            distribution.DistributeInput(default_project="OPS", grace=0, requests_per_second=None)
        )
        spent: collections.Counter[str] = collections.Counter()
        timed_phases(spent)
        monitor = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        # As `reclaim worker` does once started.
        gc.collect()
        gc.freeze()
        pg_before, sim_before = client_backends_cpu(monitor), cpu_seconds(sim_pid)
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        for payload in payloads:
            batch = distribution.TicketBatch.model_validate(payload)
            distribution.distribute_batch(engine, client, batch.items, grace=0).model_dump_json()
        cpu, wall = time.process_time() - cpu_before, time.perf_counter() - wall_before
        pg_after, sim = client_backends_cpu(monitor), cpu_seconds(sim_pid) - sim_before
        pg = sum(cpu - pg_before.get(pid, 0.0) for pid, cpu in pg_after.items())
        created = monitor.execute(
            sa.text("SELECT count(*) FROM tickets WHERE state = 'created'")
        ).scalar_one()
        scans = monitor.execute(
            sa.text(
                "SELECT seq_scan, seq_tup_read FROM pg_stat_user_tables WHERE relname = 'tickets'"
            )
        ).one()
        monitor.close()
        engine.dispose()
    per = 1000 / max(int(created), 1)
    print(f"{created} tickets, load {os.getloadavg()[0]:.1f}, wall {wall * per:.3f} ms/ticket")
    print(f"CPU ms/ticket: this process {cpu * per:.3f}, simulator {sim * per:.3f}, ", end="")
    print(f"PostgreSQL client backends {pg * per:.3f}")
    for name, seconds in spent.most_common():
        print(f"  {name}: {seconds * per:.4f}")
    print(f"sequential scans of tickets: {scans[0]}, rows read {scans[1]}")


if __name__ == "__main__":
    main()
