"""Workflows the browser tests run, resume and cancel through the dashboard.

``gate`` fails its step while the file named in its input exists, so a test makes a run fail,
removes the file, and resumes the run from the dashboard.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reclaim.durable import StepContext, Workflow

batch = Workflow("dashboard-test.batch", version="1")


@batch.step()
def plan(ctx: StepContext) -> list[str]:
    return [f"item-{n:02d}" for n in range(12)]


@batch.map_step(over="plan", key=lambda item: item)
def handle(ctx: StepContext, item: str) -> int:
    return len(item)


@batch.step(depends_on=("handle",))
def summarize(ctx: StepContext, handle: dict[str, int]) -> int:
    return sum(handle.values())


gate = Workflow("dashboard-test.gate", version="1")


@gate.step()
def prepare(ctx: StepContext) -> str:
    return "ready"


@gate.step(depends_on=("prepare",))
def guarded(ctx: StepContext, prepare: str) -> str:
    blocker = Path(ctx.input["blocker"])
    if blocker.exists():
        raise RuntimeError(f"blocked by {blocker.name}: remove it and resume the run")
    return prepare + " and done"


def gate_input(blocker: Path) -> dict[str, Any]:
    return {"blocker": str(blocker)}
