"""Workflows run, fail, resume and stop as documented, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel

from reclaim.durable import (
    DefinitionMismatch,
    DurableEngine,
    ParallelExecutor,
    RetryPolicy,
    RunCancelled,
    RunStatus,
    StepContext,
    StepFailed,
    StepStatus,
    StepTimeout,
    Store,
    Workflow,
    WorkflowTimeout,
)


class Crash(BaseException):
    """Stands in for the process dying: not an Exception, so nothing catches or records it."""


class Resource(BaseModel):
    id: str
    cost: float


def _engine(store: Store, *workflows: Workflow, **kwargs: Any) -> DurableEngine:
    return DurableEngine(store, workflows=workflows, **kwargs)


def test_sequential_run_passes_outputs_and_checkpoints_every_step(store: Store) -> None:
    wf = Workflow("seq", register=False)
    order: list[str] = []

    @wf.step()
    def collect(ctx: StepContext) -> list[Resource]:
        order.append("collect")
        return [Resource(id="a", cost=1.5), Resource(id="b", cost=2.0)]

    @wf.step(depends_on=("collect",))
    def total(ctx: StepContext, collect: list[Resource]) -> float:
        order.append("total")
        assert all(isinstance(r, Resource) for r in collect)  # typed round trip
        return sum(r.cost for r in collect)

    engine = _engine(store, wf)
    run_id = engine.start(wf, {"week": 48})
    assert engine.run(run_id) == 3.5
    assert order == ["collect", "total"]
    run = engine.get_run(run_id)
    assert run.status is RunStatus.SUCCEEDED
    assert [(s.step, s.status) for s in engine.steps(run_id)] == [
        ("collect", StepStatus.SUCCEEDED),
        ("total", StepStatus.SUCCEEDED),
    ]
    assert engine.run(run_id) == 3.5  # a finished run returns its result, runs nothing
    assert order == ["collect", "total"]


def test_a_resumed_run_never_reruns_a_finished_step(store: Store) -> None:
    wf = Workflow("resume", register=False)
    calls: dict[str, int] = {"a": 0, "b": 0, "c": 0}
    crash = {"b": True}

    @wf.step()
    def a(ctx: StepContext) -> int:
        calls["a"] += 1
        return 1

    @wf.step(depends_on=("a",))
    def b(ctx: StepContext, a: int) -> int:
        calls["b"] += 1
        if crash["b"]:
            raise Crash
        return a + 1

    @wf.step(depends_on=("b",))
    def c(ctx: StepContext, b: int) -> int:
        calls["c"] += 1
        return b + 1

    engine = _engine(store, wf)
    run_id = engine.start(wf)
    with pytest.raises(Crash):
        engine.run(run_id)
    assert engine.get_run(run_id).status is RunStatus.RUNNING  # the "dead" process holds it
    crash["b"] = False
    restarted = _engine(store, wf)
    assert restarted.run(run_id, force=True) == 3
    assert calls == {"a": 1, "b": 2, "c": 1}


def test_map_step_resumes_at_the_first_unfinished_item(store: Store) -> None:
    wf = Workflow("fanout", register=False)
    seen: list[str] = []
    fail_on = {"t-3"}

    @wf.step()
    def tickets(ctx: StepContext) -> list[dict[str, str]]:
        return [{"id": f"t-{n}"} for n in range(6)]

    @wf.map_step(over="tickets", key=lambda t: t["id"], concurrency=1)
    def create(ctx: StepContext, item: dict[str, str]) -> str:
        seen.append(item["id"])
        if item["id"] in fail_on:
            raise RuntimeError("jira is down")
        return f"JIRA-{item['id']}"

    engine = _engine(store, wf)
    run_id = engine.start(wf)
    with pytest.raises(StepFailed, match="'create' item 't-3'"):
        engine.run(run_id)
    assert engine.get_run(run_id).status is RunStatus.FAILED
    assert seen == ["t-0", "t-1", "t-2", "t-3"]
    fail_on.clear()
    result = engine.resume(run_id)
    assert seen[4:] == ["t-3", "t-4", "t-5"]
    assert list(result) == [f"t-{n}" for n in range(6)]
    assert result["t-5"] == "JIRA-t-5"
    assert engine.result(run_id) == result


def test_map_items_are_keyed_not_positional(store: Store) -> None:
    wf = Workflow("keyed", register=False)
    items = {"list": ["b", "a", "c"]}

    @wf.step()
    def names(ctx: StepContext) -> list[str]:
        return items["list"]

    @wf.map_step(over="names", key=lambda name: name, concurrency=3)
    def upper(ctx: StepContext, item: str) -> str:
        assert ctx.idempotency_key == f"{ctx.run_id}/upper/{item}"
        return item.upper()

    engine = _engine(store, wf)
    assert engine.run_workflow(wf) == {"b": "B", "a": "A", "c": "C"}


def test_steps_see_the_database_the_run_is_stored_in(store: Store) -> None:
    wf = Workflow("sees-db", register=False)

    @wf.step()
    def count_runs(ctx: StepContext) -> int:
        assert ctx.database is store.engine
        with ctx.database.connect() as connection:
            return int(
                connection.execute(sa.text("SELECT count(*) FROM durable_runs")).scalar_one()
            )

    assert _engine(store, wf).run_workflow(wf) == 1


def test_duplicate_map_keys_fail_the_step(store: Store) -> None:
    wf = Workflow("dupes", register=False)
    wf.step(name="names")(lambda ctx: ["x", "x"])
    wf.map_step(over="names", key=lambda n: n, name="each")(lambda ctx, item: item)
    with pytest.raises(StepFailed, match="'x' appears twice"):
        _engine(store, wf).run_workflow(wf)


def test_parallel_executor_starts_ready_steps_without_a_barrier(store: Store) -> None:
    wf = Workflow("parallel", register=False)
    slow_started = threading.Event()
    release_slow = threading.Event()
    fast_chain: list[str] = []

    @wf.step()
    def slow(ctx: StepContext) -> str:
        slow_started.set()
        assert release_slow.wait(30)
        return "slow"

    @wf.step()
    def fast(ctx: StepContext) -> str:
        assert slow_started.wait(30)
        fast_chain.append("fast")
        return "fast"

    @wf.step(depends_on=("fast",))
    def after_fast(ctx: StepContext, fast: str) -> str:
        # Runs while `slow` is still running: nothing waits for unrelated steps.
        fast_chain.append("after_fast")
        release_slow.set()
        return fast + "!"

    @wf.step(depends_on=("slow", "after_fast"))
    def join(ctx: StepContext, slow: str, after_fast: str) -> str:
        return f"{slow}+{after_fast}"

    engine = _engine(store, wf, executor=ParallelExecutor(max_workers=4))
    assert engine.run_workflow(wf) == "slow+fast!"
    assert fast_chain == ["fast", "after_fast"]


def test_parallel_failure_lets_running_steps_finish_then_fails_the_run(store: Store) -> None:
    wf = Workflow("parallel-fail", register=False)

    @wf.step()
    def ok(ctx: StepContext) -> int:
        return 1

    @wf.step()
    def broken(ctx: StepContext) -> int:
        raise ValueError("bad data")

    @wf.step(depends_on=("ok", "broken"))
    def never(ctx: StepContext, ok: int, broken: int) -> int:
        raise AssertionError("must not run")

    engine = _engine(store, wf, executor=ParallelExecutor(max_workers=2))
    run_id = engine.start(wf)
    with pytest.raises(StepFailed, match="ValueError: bad data"):
        engine.run(run_id)
    statuses = {s.step: s.status for s in engine.steps(run_id)}
    assert statuses == {"ok": StepStatus.SUCCEEDED, "broken": StepStatus.FAILED}
    run = engine.get_run(run_id)
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert "broken" in run.error


def test_retries_follow_the_policy_and_are_recorded(store: Store) -> None:
    wf = Workflow("retry", register=False)
    attempts: list[int] = []

    @wf.step(retry=RetryPolicy(attempts=3, backoff_base=0.0, jitter=False))
    def flaky(ctx: StepContext) -> int:
        attempts.append(ctx.attempt)
        if ctx.attempt < 3:
            raise ConnectionError("try again")
        return ctx.attempt

    engine = _engine(store, wf)
    run_id = engine.start(wf)
    assert engine.run(run_id) == 3
    assert attempts == [1, 2, 3]
    (record,) = engine.steps(run_id)
    assert record.attempts == 3


def test_permanent_errors_do_not_retry(store: Store) -> None:
    wf = Workflow("permanent", register=False)
    attempts: list[int] = []

    @wf.step(retry=RetryPolicy(attempts=5, backoff_base=0.0, permanent=(KeyError,)))
    def lookup(ctx: StepContext) -> int:
        attempts.append(ctx.attempt)
        raise KeyError("no such account")

    with pytest.raises(StepFailed, match="1 attempt"):
        _engine(store, wf).run_workflow(wf)
    assert attempts == [1]


def test_context_values_replay_after_a_crash(store: Store) -> None:
    wf = Workflow("replay", register=False)
    crash = {"on": True}
    seen: list[tuple[str, str, float]] = []

    @wf.step()
    def keyed(ctx: StepContext) -> str:
        stamp = ctx.now().isoformat()
        token = str(ctx.uuid())
        draw = ctx.random()
        seen.append((stamp, token, draw))
        if crash["on"]:
            raise Crash
        return token

    engine = _engine(store, wf)
    run_id = engine.start(wf)
    with pytest.raises(Crash):
        engine.run(run_id)
    crash["on"] = False
    token = _engine(store, wf).run(run_id, force=True)
    assert seen[0] == seen[1]
    assert token == seen[0][1]


def test_durable_sleep_is_not_restarted_after_a_crash(store: Store) -> None:
    wf = Workflow("sleepy", register=False)
    crash = {"on": True}
    wake_times: list[float] = []

    @wf.step()
    def wait(ctx: StepContext) -> str:
        ctx.sleep(0.05)
        wake_times.append(ctx.now().timestamp())
        if crash["on"]:
            raise Crash
        return "awake"

    engine = _engine(store, wf)
    run_id = engine.start(wf)
    with pytest.raises(Crash):
        engine.run(run_id)
    crash["on"] = False
    assert _engine(store, wf).run(run_id, force=True) == "awake"
    (record,) = engine.steps(run_id)
    assert record.events is not None
    assert '"kind":"sleep"' in record.events
    assert wake_times[0] == wake_times[1]  # the recorded values, not new ones


def test_cancel_stops_the_run_at_the_next_step_boundary(store: Store) -> None:
    wf = Workflow("cancel", register=False)
    ran: list[str] = []
    holder: dict[str, Any] = {}

    @wf.step()
    def first(ctx: StepContext) -> int:
        ran.append("first")
        holder["engine"].cancel(ctx.run_id)
        return 1

    @wf.step(depends_on=("first",))
    def second(ctx: StepContext, first: int) -> int:
        ran.append("second")
        return 2

    engine = _engine(store, wf)
    holder["engine"] = engine
    run_id = engine.start(wf)
    with pytest.raises(RunCancelled):
        engine.run(run_id)
    assert ran == ["first"]
    assert engine.get_run(run_id).status is RunStatus.CANCELLED
    with pytest.raises(RunCancelled):
        engine.run(run_id)


def test_workflow_timeout_fails_the_run_at_a_boundary(store: Store) -> None:
    wf = Workflow("deadline", timeout=0.05, register=False)

    @wf.step()
    def slow(ctx: StepContext) -> int:
        ctx.sleep(0.2)
        return 1

    @wf.step(depends_on=("slow",))
    def after(ctx: StepContext, slow: int) -> int:
        return 2

    engine = _engine(store, wf)
    run_id = engine.start(wf)
    with pytest.raises(WorkflowTimeout):
        engine.run(run_id)
    assert engine.get_run(run_id).status is RunStatus.FAILED


def test_step_timeout_abandons_the_attempt(store: Store) -> None:
    wf = Workflow("step-timeout", register=False)
    never = threading.Event()

    @wf.step(timeout=0.05)
    def hangs(ctx: StepContext) -> int:
        never.wait(5)
        return 1

    with pytest.raises(StepFailed) as caught:
        _engine(store, wf).run_workflow(wf)
    assert isinstance(caught.value.__cause__, StepTimeout)
    never.set()


def test_resuming_with_a_changed_definition_fails_naming_the_step(store: Store) -> None:
    old = Workflow("evolving", register=False)
    old.step(name="collect")(lambda ctx: 1)

    @old.step(depends_on=("collect",))
    def evaluate(ctx: StepContext, collect: int) -> int:
        raise Crash

    engine = _engine(store, old)
    run_id = engine.start(old)
    with pytest.raises(Crash):
        engine.run(run_id)

    new = Workflow("evolving", register=False)
    new.step(name="collect")(lambda ctx: 1)
    new.step(name="score", depends_on=("collect",))(lambda ctx, collect: 2)
    with pytest.raises(DefinitionMismatch, match="'evaluate' is no longer declared"):
        _engine(store, new).run(run_id, force=True)
    # The run is left untouched (no claim spent) for code that can continue it.
    run = engine.get_run(run_id)
    assert run.status is RunStatus.RUNNING
    assert run.attempts == 1


def test_start_is_idempotent_with_a_run_id(store: Store) -> None:
    wf = Workflow("idem", register=False)
    wf.step(name="only")(lambda ctx: ctx.input["n"] * 2)
    engine = _engine(store, wf)
    assert engine.start(wf, {"n": 2}, run_id="weekly-2026-48") == "weekly-2026-48"
    assert engine.start(wf, {"n": 3}, run_id="weekly-2026-48") == "weekly-2026-48"
    assert engine.run("weekly-2026-48") == 4
    assert [run.id for run in engine.list_runs()] == ["weekly-2026-48"]


def test_keyed_side_effects_happen_once_across_a_crash(store: Store) -> None:
    wf = Workflow("side-effects", register=False)
    ledger: dict[str, int] = {}
    crash = {"on": True}

    @wf.step()
    def pay(ctx: StepContext) -> str:
        ledger.setdefault(ctx.idempotency_key, 0)
        ledger[ctx.idempotency_key] += 0 if ledger[ctx.idempotency_key] else 1
        if crash["on"]:
            raise Crash  # after the side effect, before the checkpoint
        return ctx.idempotency_key

    engine = _engine(store, wf)
    run_id = engine.start(wf)
    with pytest.raises(Crash):
        engine.run(run_id)
    crash["on"] = False
    key = _engine(store, wf).run(run_id, force=True)
    assert key == f"{run_id}/pay"
    assert ledger == {key: 1}


def test_an_owner_that_lost_its_run_stops_without_writing(store: Store) -> None:
    from reclaim.durable import LeaseLost

    wf = Workflow("stolen", register=False)
    ran: list[str] = []

    @wf.step()
    def first(ctx: StepContext) -> int:
        ran.append("first")
        # Another worker takes the run over while this step runs (as after a long pause).
        assert store.claim_run("thief", 60, run_id=ctx.run_id, force=True) is not None
        return 1

    @wf.step(depends_on=("first",))
    def second(ctx: StepContext, first: int) -> int:
        ran.append("second")
        return 2

    engine = _engine(store, wf)
    run_id = engine.start(wf)
    with pytest.raises(LeaseLost, match="thief"):
        engine.run(run_id)
    assert ran == ["first"]
    assert engine.steps(run_id) == []  # the stale owner's checkpoint was refused
    run = engine.get_run(run_id)
    assert run.owner == "thief"
    assert run.status is RunStatus.RUNNING


def test_an_abandoned_attempt_cannot_touch_the_finished_step(store: Store) -> None:
    wf = Workflow("zombie", register=False)
    release = threading.Event()
    zombie: list[BaseException] = []
    zombie_done = threading.Event()

    @wf.step(timeout=0.05, retry=RetryPolicy(attempts=2, backoff_base=0.0, jitter=False))
    def slow_first(ctx: StepContext) -> int:
        if ctx.attempt == 1:
            release.wait(30)
            try:
                ctx.now()  # after the step finished through attempt 2
            except BaseException as exc:
                zombie.append(exc)
            finally:
                zombie_done.set()
        return ctx.attempt

    engine = _engine(store, wf)
    run_id = engine.start(wf)
    assert engine.run(run_id) == 2
    release.set()
    assert zombie_done.wait(30)
    assert isinstance(zombie[0], StepTimeout)
    (record,) = engine.steps(run_id)
    assert record.status is StepStatus.SUCCEEDED
    assert record.output == "2"
