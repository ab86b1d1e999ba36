"""A worker process as ``reclaim worker`` builds it, without importing the whole CLI.

``python worker_main.py URL LEASE [--until-idle]``: the full command line imports every part of
reclaim (seconds on a busy machine); most tests only need the worker, so they start this. One
test goes through the real ``reclaim worker`` command.
"""

from __future__ import annotations

import logging
import sys

import durable_worker_flows  # noqa: F401  (registers the workflows)

from reclaim.database import create_engine
from reclaim.durable import DurableEngine
from reclaim.durable.worker import Worker


def main() -> None:
    url, lease = sys.argv[1], float(sys.argv[2])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    engine = DurableEngine(create_engine(url), lease_seconds=lease)
    worker = Worker(engine, poll_interval=0.05, schedules=False)
    worker.install_signal_handlers()
    worker.run(until_idle="--until-idle" in sys.argv[3:])


if __name__ == "__main__":
    main()
