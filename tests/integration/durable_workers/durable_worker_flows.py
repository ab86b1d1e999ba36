"""Workflows that the worker tests run in ``reclaim worker --module durable_worker_flows``.

Every step execution appends ``<pid> <step>`` to the file named by ``WORKER_FLOWS_LOG``, so a
test can tell which process ran what, and how often.
"""

from __future__ import annotations

import os
import signal
import time

from reclaim.durable import StepContext, Workflow

LOG_ENV = "WORKER_FLOWS_LOG"


def note(what: str) -> None:
    fd = os.open(os.environ[LOG_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{os.getpid()} {what}\n".encode())
    finally:
        os.close(fd)


slow = Workflow("slow", version="1")


def _slow_step(ctx: StepContext) -> int:
    note(f"{ctx.step} start")
    time.sleep(float(ctx.input["seconds"]))
    note(f"{ctx.step} end")
    return os.getpid()


@slow.step()
def s1(ctx: StepContext) -> int:
    return _slow_step(ctx)


@slow.step(depends_on=("s1",))
def s2(ctx: StepContext, s1: int) -> int:
    return _slow_step(ctx)


@slow.step(depends_on=("s2",))
def s3(ctx: StepContext, s2: int) -> int:
    return _slow_step(ctx)


@slow.step(depends_on=("s3",))
def s4(ctx: StepContext, s3: int) -> int:
    return _slow_step(ctx)


doomed = Workflow("doomed", version="1", max_attempts=3)


@doomed.step()
def crash(ctx: StepContext) -> None:
    """Kills whichever worker runs it, every time."""
    note("crash")
    os.kill(os.getpid(), signal.SIGKILL)


tick = Workflow("tick", version="1")


@tick.step()
def once(ctx: StepContext) -> str:
    return str(ctx.input)
