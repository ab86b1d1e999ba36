"""The step context records values once and replays them in order."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from reclaim.durable import DefinitionMismatch, StepContext


def _context(recorded: list[dict[str, Any]], writes: list[str], item_key: str = "") -> StepContext:
    return StepContext(
        run_id="run-1",
        workflow="wf",
        step="pay",
        item_key=item_key,
        attempt=1,
        input=None,
        recorded=recorded,
        record=writes.append,
        stop=threading.Event(),
        check=lambda: None,
    )


def test_idempotency_keys_name_run_step_and_item() -> None:
    assert _context([], []).idempotency_key == "run-1/pay"
    assert _context([], [], item_key="inv-7").idempotency_key == "run-1/pay/inv-7"


def test_values_are_recorded_before_they_are_returned_and_replayed() -> None:
    writes: list[str] = []
    first = _context([], writes)
    when, token, draw = first.now(), first.uuid(), first.random()
    assert len(writes) == 3  # one checkpoint per value, before the step can use it
    recorded = json.loads(writes[-1])
    assert [entry["kind"] for entry in recorded] == ["now", "uuid", "random"]

    replay_writes: list[str] = []
    again = _context(recorded, replay_writes)
    assert (again.now(), again.uuid(), again.random()) == (when, token, draw)
    assert replay_writes == []  # replayed values are not written again
    again.random()  # past the recorded ones: a new value, recorded
    assert len(replay_writes) == 1


def test_a_different_call_order_on_replay_is_refused() -> None:
    writes: list[str] = []
    first = _context([], writes)
    first.now()
    again = _context(json.loads(writes[-1]), [])
    with pytest.raises(DefinitionMismatch, match="asked the context for uuid"):
        again.uuid()


def test_sleep_records_its_wake_up_time() -> None:
    writes: list[str] = []
    context = _context([], writes)
    context.sleep(0)
    (entry,) = json.loads(writes[-1])
    assert entry["kind"] == "sleep"
    assert isinstance(entry["value"], float)


def test_sleep_is_interrupted_when_the_run_must_stop() -> None:
    stop = threading.Event()
    stop.set()

    class Stopped(Exception):
        pass

    def check() -> None:
        if stop.is_set():
            raise Stopped

    context = StepContext(
        run_id="r",
        workflow="wf",
        step="s",
        item_key="",
        attempt=1,
        input=None,
        recorded=[],
        record=lambda _: None,
        stop=stop,
        check=check,
    )
    assert context.cancelled
    with pytest.raises(Stopped):
        context.sleep(3600)
