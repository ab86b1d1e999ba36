"""A process of the weekly loop for the crash tests: drives a run, or works as a worker.

    python loop_child.py drive  URL SCHEMA|- RUN_ID KILL_POINT|- KILL_AT
    python loop_child.py worker URL SCHEMA|- LEASE  KILL_POINT|- KILL_AT

A fresh interpreter, not a fork: the parent test process has used Polars, whose thread pool
does not survive a fork. It kills itself by SIGKILL at the KILL_AT-th KILL_POINT of the
exactly-once protocol (``intent``, ``created``, ``recorded``). The Jira token comes from the
environment, as in production.
"""

from __future__ import annotations

import os
import signal
import sys

from reclaim.database import create_engine
from reclaim.durable import DurableEngine
from reclaim.durable.worker import Worker
from reclaim.pipeline import WEEKLY
from reclaim.sync import add_progress_observer


def main() -> None:
    mode, url, schema, arg, point, at = sys.argv[1:7]
    engine = create_engine(url, schema=None if schema == "-" else schema)
    if point != "-":
        seen = 0

        def observer(name: str, _fingerprint: str) -> None:
            nonlocal seen
            if name == point:
                seen += 1
                if seen == int(at):
                    os.kill(os.getpid(), signal.SIGKILL)

        add_progress_observer(observer)
    if mode == "drive":
        DurableEngine(engine, workflows=[WEEKLY]).run(arg)
    else:
        durable = DurableEngine(
            engine, workflows=[WEEKLY], lease_seconds=float(arg), distribute_items=True
        )
        Worker(durable, poll_interval=0.05, schedules=False).run(until_idle=True)
    engine.dispose()


if __name__ == "__main__":
    main()
