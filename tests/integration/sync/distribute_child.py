"""A distributing process for the exactly-once tests: runs, and dies by SIGKILL where told.

    python distribute_child.py DB_URL SCHEMA|- MODE KILL_POINT|- KILL_AT [TICKET_BATCH]

The tests fork a process that calls :func:`child` (imports are done once, in the parent).

MODE ``workflow`` runs the ``reclaim.tickets.distribute`` durable workflow (run id ``dist``,
TICKET_BATCH tickets per map item);
``bulk`` calls ``Distributor.distribute_many`` over every open recommendation. The Jira URL
and credentials come from the environment, as in production.
"""

from __future__ import annotations

import os
import signal
import sys

from reclaim.database import create_engine
from reclaim.durable import DurableEngine
from reclaim.recommend import RecommendationStore, Status
from reclaim.sync import (
    add_progress_observer,
    distribute_bulk,
    distribute_workflow,
    plan_items,
)
from reclaim.tickets import connect, credentials_from_env
from reclaim.tickets.routing import load_routing
from reclaim.tickets.templates import load_templates


def main() -> None:
    child(*sys.argv[1:7])


def child(url: str, schema: str, mode: str, point: str, at: str, batch: str = "50") -> None:
    engine = create_engine(url, schema=None if schema == "-" else schema)
    seen = 0

    def observer(name: str, fingerprint: str) -> None:
        nonlocal seen
        if name == point:
            seen += 1
            if seen == int(at):
                os.kill(os.getpid(), signal.SIGKILL)

    if point != "-":
        add_progress_observer(observer)
    grace = float(os.environ.get("TEST_GRACE", "1.0"))
    if mode == "workflow":
        options = {
            "default_project": "OPS",
            "grace": grace,
            "requests_per_second": None,
            "ticket_batch": int(batch),
        }
        DurableEngine(engine).run_workflow(distribute_workflow, options, run_id="dist")
    else:
        records = RecommendationStore(engine).find(statuses=[Status.OPEN], limit=None)
        items = plan_items(records, load_routing(None, default_project="OPS"), load_templates(None))
        with connect(credentials_from_env(), requests_per_second=None) as client:
            distribute_bulk(engine, client, items, grace=grace)
    engine.dispose()


if __name__ == "__main__":
    main()
