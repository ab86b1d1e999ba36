"""A workflow for the worker tests: ``reclaim worker --module service_worker_flows``.

Each item appends ``<pid> <item>`` to the file named by ``SERVICE_FLOWS_LOG`` when it finishes,
so a test can tell which process ran which item and whether any ran twice. An item sleeps for
the run's ``seconds``, or for ``SERVICE_FLOWS_SECONDS`` when the process has it: the workers a
test stops need slow items (work is still in flight when the signal comes), the one that
finishes the run afterwards does not.
"""

from __future__ import annotations

import os
import time

from reclaim.durable import StepContext, Workflow

LOG_ENV = "SERVICE_FLOWS_LOG"
SECONDS_ENV = "SERVICE_FLOWS_SECONDS"
ITEMS = 120

fanout = Workflow("service-test.fanout", version="1")


@fanout.step()
def keys(ctx: StepContext) -> list[str]:
    return [f"item-{n:03d}" for n in range(ITEMS)]


@fanout.map_step(over="keys", key=lambda item: str(item), concurrency=2)
def work(ctx: StepContext, item: str) -> int:
    time.sleep(float(os.environ.get(SECONDS_ENV, ctx.input["seconds"])))
    fd = os.open(os.environ[LOG_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{os.getpid()} {item}\n".encode())
    finally:
        os.close(fd)
    return os.getpid()
