"""One step (or map item) attempted until it succeeds or its retry policy gives up.

Shared by the run's owner and by workers that help with map items: only the way a checkpoint
is written differs (fenced by the run's token, or by the item's own token), so it is passed in.
"""

from __future__ import annotations

__all__ = ["Attempted", "Prior", "run_attempts"]

import json
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from sqlalchemy.engine import Engine

from reclaim.durable.context import StepContext
from reclaim.durable.errors import LeaseLost, RunCancelled, StepFailed, StepTimeout, WorkflowTimeout
from reclaim.durable.records import Checkpoint, StepStatus
from reclaim.durable.workflow import StepSpec
from reclaim.errors import ConfigError


def utcnow() -> datetime:
    return datetime.now(UTC)


def describe(error: BaseException) -> str:
    """``Type: message (at file:line in function)`` of the innermost frame."""
    text = f"{type(error).__name__}: {error}"
    frames = traceback.extract_tb(error.__traceback__)
    if frames:
        last = frames[-1]
        text += f" (at {last.filename}:{last.lineno} in {last.name})"
    return text


def label(step: str, item_key: str) -> str:
    return f"step {step!r}" + (f" item {item_key!r}" if item_key else "")


@dataclass(frozen=True)
class Prior:
    """What earlier attempts left in the checkpoint row: their count, values, first start."""

    attempts: int = 0
    events: str | None = None
    started_at: datetime | None = None


@dataclass(frozen=True)
class Attempted:
    """A successful attempt: the encoded output and what its checkpoint must record."""

    output: str
    attempts: int
    started_at: datetime
    events: str | None
    # The output read back from its JSON, as dependents and a resumed run see it.
    value: Any = None

    def checkpoint(self, step: str, item_key: str) -> Checkpoint:
        return Checkpoint(
            step,
            item_key,
            StepStatus.SUCCEEDED,
            self.attempts,
            output=self.output,
            events=self.events,
            started_at=self.started_at,
            finished_at=utcnow(),
        )


def run_attempts(
    *,
    spec: StepSpec,
    item_key: str,
    prior: Prior,
    call: Callable[[StepContext], Any],
    write: Callable[[Checkpoint], None],
    check: Callable[[], None],
    stop: threading.Event,
    run_id: str,
    workflow: str,
    input: Any,
    database: Engine | None = None,
) -> Attempted:
    """Attempt until success (→ ``Attempted``, not yet checkpointed) or ``StepFailed``.

    Failed attempts that will be retried are checkpointed as ``running`` with their error and
    count, so a resumed run continues the count; the final failure is checkpointed ``failed``.
    ``check`` raises when the run must stop (cancelled, lost, timed out). A step whose code no
    longer fits the run — it read the context in another order than its recorded attempt, or
    returned a value with no JSON form — raises that ``ConfigError`` at once, never retried.
    """
    attempts = prior.attempts
    recorded: list[dict[str, Any]] = json.loads(prior.events) if prior.events else []
    started = prior.started_at or utcnow()

    def events() -> str | None:
        return json.dumps(recorded, separators=(",", ":")) if recorded else None

    where = f"{label(spec.name, item_key)} of run {run_id}"

    while True:
        check()
        attempt = attempts + 1

        def record(values: str, attempt: int = attempt) -> None:
            write(
                Checkpoint(
                    spec.name,
                    item_key,
                    StepStatus.RUNNING,
                    attempt,
                    events=values,
                    started_at=started,
                )
            )

        context = StepContext(
            run_id=run_id,
            workflow=workflow,
            step=spec.name,
            item_key=item_key,
            attempt=attempt,
            input=input,
            recorded=recorded,
            database=database,
            record=record,
            stop=stop,
            check=check,
        )
        failure: Exception | None = None
        try:
            value = _invoke(spec, item_key, call, context)
        except (LeaseLost, RunCancelled, WorkflowTimeout):
            raise
        except Exception as error:
            failure = error
        if context.mismatch is not None:
            # Whether the step raised it or swallowed it, its code no longer fits the run.
            refused = _located(context.mismatch, where)
            _refuse(spec, item_key, attempt, refused, write, started, events())
        if failure is not None:
            attempts = attempt
            decision = spec.retry.decide(failure, attempt)
            if not decision.retry:
                message = f"{where} failed after {attempt} attempt(s): {describe(failure)}"
                write(
                    Checkpoint(
                        spec.name,
                        item_key,
                        StepStatus.FAILED,
                        attempt,
                        error=message,
                        events=events(),
                        started_at=started,
                        finished_at=utcnow(),
                    )
                )
                raise StepFailed(message, step=spec.name, item_key=item_key) from failure
            write(
                Checkpoint(
                    spec.name,
                    item_key,
                    StepStatus.RUNNING,
                    attempt,
                    error=f"attempt {attempt}: {describe(failure)}",
                    events=events(),
                    started_at=started,
                )
            )
            _pause(decision.delay, check, stop)
            continue
        try:
            output, decoded = spec.round_trip(value, where=where)
        except ConfigError as error:
            _refuse(spec, item_key, attempt, error, write, started, events())
        return Attempted(output, attempt, started, events(), decoded)


def _located(error: ConfigError, where: str) -> ConfigError:
    located = type(error)(f"{where} {error.message}", fix=error.fix)
    located.__cause__ = error
    return located


def _refuse(
    spec: StepSpec,
    item_key: str,
    attempt: int,
    refused: ConfigError,
    write: Callable[[Checkpoint], None],
    started: datetime,
    events: str | None,
) -> NoReturn:
    # The code does not fit the run (context read in another order, a result with no JSON
    # form): another attempt of the same code would only repeat the step's side effects and
    # fail the same way, so there is none; the run's owner fails the run with this message.
    # The row stays unfinished rather than failed because resuming a failed run forgets
    # failed rows: kept, the values the step recorded (which may key its effects) are
    # replayed to the fixed code, and the attempt count goes on.
    write(
        Checkpoint(
            spec.name,
            item_key,
            StepStatus.RUNNING,
            attempt,
            error=str(refused),
            events=events,
            started_at=started,
        )
    )
    raise refused


def _pause(seconds: float, check: Callable[[], None], stop: threading.Event) -> None:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        check()
        stop.wait(min(left, 1.0))
    check()


def _invoke(
    spec: StepSpec, item_key: str, call: Callable[[StepContext], Any], context: StepContext
) -> Any:
    if spec.timeout is None:
        return call(context)
    # Python cannot kill a thread: a timed-out attempt is abandoned (its thread runs on, its
    # result is discarded) and the step is retried or failed per its policy.
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = call(context)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"durable-{spec.name}", daemon=True)
    thread.start()
    thread.join(spec.timeout)
    if thread.is_alive():
        context.abandon()
        raise StepTimeout(
            f"{label(spec.name, item_key)} ran longer than its timeout of {spec.timeout}s"
        )
    if "error" in box:
        raise box["error"]
    return box["value"]
