"""What a running step sees: who it is, and time, randomness and ids that replay identically.

A step that reads the clock or draws a random number directly would see different values when
it runs again after a crash, and a side effect keyed on such a value would happen twice. The
context records each such value in the step's checkpoint row before handing it out, and a step
that runs again receives the recorded values in the same order.
"""

from __future__ import annotations

__all__ = ["StepContext"]

import json
import random as _random
import threading
import time
import uuid as _uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine

from reclaim.durable.errors import DefinitionMismatch, StepTimeout

# Checkpoints the list of recorded values; raises LeaseLost/RunCancelled like any checkpoint.
Recorder = Callable[[str], None]


class StepContext:
    """Passed as the first argument to every step (and every map item).

    ``database`` is the SQLAlchemy engine the run is stored in, for steps whose own data lives
    in the same database (so a process that resumes the run needs nothing else bound).
    ``idempotency_key`` is ``"<run_id>/<step>"`` for a plain step and
    ``"<run_id>/<step>/<item_key>"`` for a map item: the same on every attempt and after every
    crash, so a side effect keyed on it (an ``INSERT … ON CONFLICT DO NOTHING``, an
    ``Idempotency-Key`` header, a ticket label) happens once however often the step runs.
    Values from ``now()``, ``random()``, ``uuid()`` and ``sleep()`` are recorded per step (or
    item) and replayed, in call order, to every later attempt. A call of another kind than the
    recorded one at that position raises ``DefinitionMismatch``, and so does every later call
    (``mismatch`` keeps it), so a step that catches the error cannot go on with wrong values.
    """

    def __init__(
        self,
        *,
        run_id: str,
        workflow: str,
        step: str,
        item_key: str,
        attempt: int,
        input: Any,
        recorded: list[dict[str, Any]],
        database: Engine | None = None,
        record: Recorder,
        stop: threading.Event,
        check: Callable[[], None],
    ) -> None:
        self.run_id = run_id
        self.workflow = workflow
        self.step = step
        self.item_key = item_key
        self.attempt = attempt
        self.input = input
        self.database = database
        self._recorded = recorded
        self._cursor = 0
        self._record = record
        self._stop = stop
        self._check = check
        self._abandoned = False
        self.mismatch: DefinitionMismatch | None = None

    def __repr__(self) -> str:
        return f"StepContext({self.idempotency_key!r}, attempt={self.attempt})"

    @property
    def idempotency_key(self) -> str:
        if self.item_key:
            return f"{self.run_id}/{self.step}/{self.item_key}"
        return f"{self.run_id}/{self.step}"

    @property
    def cancelled(self) -> bool:
        """True once the run was cancelled or this process lost it; long steps may poll it."""
        return self._stop.is_set()

    def abandon(self) -> None:
        """Called when this attempt timed out: its thread may run on, but records nothing."""
        self._abandoned = True

    def _value(self, kind: str, produce: Callable[[], Any]) -> Any:
        if self._abandoned:
            raise StepTimeout(f"this attempt of step {self.step!r} was abandoned (timed out)")
        if self.mismatch is not None:
            # Sticky: a step that caught the first error must not go on with values out of
            # step with what it recorded.
            raise self.mismatch
        index = self._cursor
        self._cursor += 1
        if index < len(self._recorded):
            entry = self._recorded[index]
            if entry.get("kind") != kind:
                self.mismatch = DefinitionMismatch(
                    f"asked the context for {kind} (call #{index + 1}) where its recorded "
                    f"attempt asked for {entry.get('kind')}: the step's code changed since",
                    fix="a step must read time, randomness and ids in the same order every "
                    "time: restore that order and resume, or bump the workflow version and "
                    "start a new run",
                )
                raise self.mismatch
            return entry["value"]
        value = produce()
        self._recorded.append({"kind": kind, "value": value})
        self._record(json.dumps(self._recorded, separators=(",", ":")))
        return value

    def now(self) -> datetime:
        """The current time in UTC, recorded on first call and replayed afterwards."""
        stamp: float = self._value("now", time.time)
        return datetime.fromtimestamp(stamp, UTC)

    def random(self) -> float:
        """A float in [0, 1), recorded and replayed."""
        value: float = self._value("random", _random.random)
        return value

    def uuid(self) -> _uuid.UUID:
        """A random UUID, recorded and replayed."""
        return _uuid.UUID(self._value("uuid", lambda: str(_uuid.uuid4())))

    def sleep(self, seconds: float) -> None:
        """Sleep durably: the wake-up time is recorded, so after a crash only the rest is slept.

        Cancellation or loss of the run interrupts the sleep with the matching error.
        """
        wake: float = self._value("sleep", lambda: time.time() + max(seconds, 0.0))
        while True:
            self._check()
            remaining = wake - time.time()
            if remaining <= 0:
                return
            self._stop.wait(min(remaining, 1.0))
