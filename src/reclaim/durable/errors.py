"""What can go wrong in a durable run, as one branch of reclaim's exception tree.

Definition problems (a cycle, an unknown dependency, a run whose stored steps no longer match
the code) are ``ConfigError``: they are found before any step runs. Everything that happens
while a run is under way is an ``ExecutionError``.
"""

from __future__ import annotations

__all__ = [
    "DefinitionMismatch",
    "DurableError",
    "LeaseLost",
    "RunBusy",
    "RunCancelled",
    "RunNotFound",
    "StepFailed",
    "StepTimeout",
    "UnknownWorkflow",
    "WorkflowTimeout",
]

from reclaim.errors import ConfigError, ExecutionError


class DurableError(ExecutionError):
    """A durable run failed."""


class StepFailed(DurableError):
    """A step failed permanently, after its retries; the run is marked failed."""

    def __init__(self, message: str | None = None, *, step: str = "", item_key: str = "") -> None:
        self.step = step
        self.item_key = item_key
        super().__init__(
            message,
            fix="fix the cause, then `reclaim runs resume RUN_ID` re-runs only what did not finish",
        )


class StepTimeout(DurableError):
    """A step attempt ran longer than its timeout and was abandoned."""


class WorkflowTimeout(DurableError):
    """The run passed its workflow timeout; it stopped at a step boundary and is marked failed."""


class RunCancelled(DurableError):
    """The run was cancelled; it stopped at the next step boundary."""


class LeaseLost(DurableError):
    """This process no longer owns the run (its lease expired and another owner claimed it).

    The stale owner must stop at once: its checkpoint was not written, and the new owner will
    run the step again.
    """


class RunNotFound(DurableError):
    """No run has this id."""


class RunBusy(DurableError):
    """Another live owner holds the run's lease."""


class UnknownWorkflow(ConfigError):
    """No workflow of this name is registered in this process."""


class DefinitionMismatch(ConfigError):
    """The run's stored definition does not match the workflow declared in the code."""
