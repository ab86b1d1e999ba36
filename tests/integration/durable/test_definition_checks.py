"""Code that no longer matches a run is refused clearly, before it can repeat a side effect.

On SQLite and PostgreSQL: a map step whose ``key=`` changed between a crash and the resume, a
step that reads the context in another order on replay, a result that is not JSON, a workflow
the engine cannot find, and a worker told to stop once idle while a dead owner's lease runs.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Hashable
from typing import Any

import pytest

from reclaim.durable import (
    DefinitionMismatch,
    DurableEngine,
    RetryPolicy,
    RunStatus,
    StepContext,
    StepStatus,
    Store,
    UnknownWorkflow,
    Worker,
    Workflow,
)
from reclaim.errors import ConfigError

# Enough attempts that a definition error treated as an ordinary one would visibly retry.
RETRY = RetryPolicy(attempts=4, backoff_base=0.0, jitter=False)


class Crash(BaseException):
    """Stands in for the process dying: not an Exception, so nothing catches or records it."""


class NotJson:
    """A value pydantic has no JSON form for."""


def _engine(store: Store, *workflows: Workflow, **kwargs: Any) -> DurableEngine:
    return DurableEngine(store, workflows=workflows, **kwargs)


# ------------------------------------------------------------------ map keys


class _Tickets:
    """A workflow whose map step's key function can be swapped between crash and resume."""

    def __init__(self, name: str, *, count: int = 4) -> None:
        self.key: Callable[[dict[str, str]], Hashable] = lambda t: t["id"]
        self.crash_on: str | None = None
        self.crash_in_report = False
        self.effects: list[str] = []  # every keyed side effect, as its idempotency key
        self.workflow = wf = Workflow(name, register=False)

        @wf.step()
        def tickets(ctx: StepContext) -> list[dict[str, str]]:
            return [{"id": f"t-{n}", "name": f"ticket {n}"} for n in range(count)]

        @wf.map_step(over="tickets", key=lambda t: self.key(t), concurrency=1, retry=RETRY)
        def create(ctx: StepContext, item: dict[str, str]) -> str:
            self.effects.append(ctx.idempotency_key)
            if item["id"] == self.crash_on:
                raise Crash
            return f"JIRA-{item['id']}"

        @wf.step(depends_on=("create",))
        def report(ctx: StepContext, create: dict[str, str]) -> int:
            if self.crash_in_report:
                raise Crash
            return len(create)


@pytest.mark.parametrize("distribute", [False, True], ids=["owner-runs-items", "queued-items"])
def test_a_changed_map_key_is_refused_naming_the_step_and_both_keys(
    store: Store, distribute: bool
) -> None:
    if distribute and store.engine.dialect.name == "sqlite":
        pytest.skip("the item queue is for workers on PostgreSQL")
    flow = _Tickets("rekey")
    flow.crash_on = "t-2"
    options: dict[str, Any] = {"distribute_items": distribute, "lease_seconds": 0.5}
    engine = _engine(store, flow.workflow, **options)
    run_id = engine.start(flow.workflow)
    with pytest.raises(Crash):
        engine.run(run_id)
    _join_heartbeats()  # a dead process beats no more (a beat would lock the run row)
    ran = list(flow.effects)
    assert len(ran) == 3  # t-0 and t-1 checkpointed, t-2 in flight when the process died

    flow.crash_on = None
    flow.key = lambda t: t["name"]  # a new key: every item would get a new idempotency key
    with pytest.raises(DefinitionMismatch) as refused:
        _engine(store, flow.workflow, **options).run(run_id, force=True)
    message = str(refused.value)
    assert "map step 'create'" in message
    assert "'t-0'" in message
    assert "'t-1'" in message
    assert "'ticket 0'" in message  # the keys the code gives now
    assert "key=" in refused.value.fix
    assert flow.effects == ran  # nothing ran under the new keys
    run = engine.get_run(run_id)
    assert run.status is RunStatus.PENDING  # handed back untouched for the right code

    flow.key = lambda t: t["id"]  # the old code resumes it
    assert _engine(store, flow.workflow, **options).run(run_id) == 4
    assert sorted(set(flow.effects)) == [f"{run_id}/create/t-{n}" for n in range(4)]
    assert [k for k in flow.effects if k.endswith("t-0")] == [f"{run_id}/create/t-0"]
    _join_heartbeats()


def _join_heartbeats() -> None:
    # With a short lease the engines' heartbeat threads write often; one still inside a
    # transaction when the fixture disposes the engine would leak its connection.
    for thread in threading.enumerate():
        if thread.name == "durable-heartbeat":
            thread.join(timeout=10)


def test_a_changed_key_of_a_finished_map_step_is_refused(store: Store) -> None:
    flow = _Tickets("rekey-done", count=3)
    flow.crash_in_report = True
    engine = _engine(store, flow.workflow)
    run_id = engine.start(flow.workflow)
    with pytest.raises(Crash):
        engine.run(run_id)
    flow.crash_in_report = False
    flow.key = lambda t: t["id"].upper()
    with pytest.raises(DefinitionMismatch, match=r"map step 'create'.*'t-0'.*'T-0'"):
        _engine(store, flow.workflow).run(run_id, force=True)
    assert len(flow.effects) == 3


def test_a_key_function_that_now_fails_or_collides_is_refused(store: Store) -> None:
    flow = _Tickets("rekey-broken")
    flow.crash_on = "t-1"
    engine = _engine(store, flow.workflow)
    run_id = engine.start(flow.workflow)
    with pytest.raises(Crash):
        engine.run(run_id)
    flow.crash_on = None

    flow.key = lambda t: t["ticket_id"]  # a field renamed in the code, not in the stored list
    with pytest.raises(DefinitionMismatch, match=r"map step 'create'.*KeyError"):
        _engine(store, flow.workflow).run(run_id, force=True)

    flow.key = lambda t: t["id"][:1]  # every element now has the key 't'
    with pytest.raises(DefinitionMismatch, match=r"map step 'create'.*'t' twice"):
        _engine(store, flow.workflow).run(run_id)
    assert len(flow.effects) == 2


def test_the_same_keys_in_another_form_resume_normally(store: Store) -> None:
    flow = _Tickets("rekey-same")
    flow.crash_on = "t-2"
    engine = _engine(store, flow.workflow)
    run_id = engine.start(flow.workflow)
    with pytest.raises(Crash):
        engine.run(run_id)
    flow.crash_on = None
    flow.key = lambda t: "t-" + t["id"].split("-")[1]  # other code, the same keys
    assert _engine(store, flow.workflow).run(run_id, force=True) == 4
    assert len(flow.effects) == 5  # only t-2 (in flight at the crash) ran twice


# ---------------------------------------------------------- context order


def test_reading_the_context_in_another_order_is_a_definition_error_not_retried(
    store: Store,
) -> None:
    wf = Workflow("reorder", register=False)
    state = {"random_first": False, "crash": True, "swallow": False}
    calls: list[int] = []

    @wf.step(retry=RETRY)
    def stamp(ctx: StepContext) -> str:
        calls.append(ctx.attempt)
        if state["random_first"]:
            try:
                draw = ctx.random()
            except Exception:
                # Code that swallows the error must not get past it with a wrong value.
                if not state["swallow"]:
                    raise
                draw = 0.5
            when = ctx.now()
        else:
            when, draw = ctx.now(), ctx.random()
        if state["crash"]:
            raise Crash
        return f"{when.isoformat()} {draw}"

    engine = _engine(store, wf)
    run_id = engine.start(wf)
    with pytest.raises(Crash):
        engine.run(run_id)
    state.update(random_first=True, crash=False)
    with pytest.raises(DefinitionMismatch) as refused:
        _engine(store, wf).run(run_id, force=True)
    assert calls == [1, 2]  # the attempt in flight at the crash, then one: not retried
    message = str(refused.value)
    assert "step 'stamp'" in message
    assert run_id in message
    assert "random" in message
    assert "now" in message
    run = engine.get_run(run_id)
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert "asked the context for random" in run.error
    [row] = engine.steps(run_id)
    assert row.error is not None
    assert "asked the context for random" in row.error
    assert row.status is StepStatus.RUNNING  # kept, with its values, for the resume
    recorded = row.events

    state["swallow"] = True
    with pytest.raises(DefinitionMismatch):
        _engine(store, wf).resume(run_id)
    assert calls == [1, 2, 3]

    state.update(random_first=False)  # the code that recorded the values resumes the run
    result = _engine(store, wf).resume(run_id)
    assert calls == [1, 2, 3, 4]
    assert engine.get_run(run_id).status is RunStatus.SUCCEEDED
    [row] = engine.steps(run_id)
    assert row.events == recorded  # the same time and draw as the attempt that crashed
    assert result.endswith(str(json.loads(recorded)[1]["value"]))


# ---------------------------------------------------------- results not JSON


def test_a_declared_return_type_without_json_form_is_refused_at_declaration() -> None:
    wf = Workflow("declared", register=False)

    def opaque(ctx: StepContext) -> NotJson:
        return NotJson()

    with pytest.raises(ConfigError, match=r"step 'opaque' of workflow 'declared'.*NotJson"):
        wf.step()(opaque)

    def callback(ctx: StepContext) -> Callable[[], int]:
        return lambda: 1

    with pytest.raises(ConfigError, match=r"step 'callback'.*Callable"):
        wf.step()(callback)

    def per_item(ctx: StepContext, item: str) -> set[NotJson]:
        return set()

    with pytest.raises(ConfigError, match=r"step 'per_item'.*NotJson"):
        wf.map_step(over="names", key=str)(per_item)


def test_a_result_that_is_not_json_fails_once_naming_the_step_and_type(store: Store) -> None:
    wf = Workflow("opaque", register=False)
    calls: list[str] = []

    @wf.step()
    def names(ctx: StepContext) -> list[str]:
        return ["a", "b"]

    @wf.map_step(over="names", key=str, retry=RETRY, concurrency=1)
    def charge(ctx: StepContext, item: str) -> dict[str, Any]:
        calls.append(item)
        return {"receipt": NotJson()} if item == "b" else {"receipt": item}

    engine = _engine(store, wf)
    run_id = engine.start(wf)
    with pytest.raises(ConfigError) as refused:
        engine.run(run_id)
    assert calls == ["a", "b"]  # not retried: running it again would repeat its effects
    message = str(refused.value)
    assert "step 'charge' item 'b'" in message
    assert "NotJson" in message
    run = engine.get_run(run_id)
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert "NotJson" in run.error


# ------------------------------------------------------------ starting runs


def test_run_workflow_of_a_workflow_the_engine_cannot_find_inserts_nothing(store: Store) -> None:
    wf = Workflow("unlisted", register=False)
    wf.step(name="only")(lambda ctx: 1)
    with pytest.raises(UnknownWorkflow, match="unlisted"):
        DurableEngine(store).run_workflow(wf)
    assert store.list_runs() == []


def test_run_workflow_of_a_stale_definition_inserts_nothing(store: Store) -> None:
    current = Workflow("twice", version="2", register=False)
    current.step(name="only")(lambda ctx: 2)
    stale = Workflow("twice", version="1", register=False)
    stale.step(name="only")(lambda ctx: 1)
    with pytest.raises(ConfigError, match=r"'twice'.*version 1.*version 2"):
        _engine(store, current).run_workflow(stale)
    assert store.list_runs() == []
    assert _engine(store, current).run_workflow(current) == 2


# ------------------------------------------------------------------ workers


def test_a_worker_until_idle_waits_out_a_dead_owners_lease_and_finishes_the_run(
    store: Store,
) -> None:
    wf = Workflow("orphan", register=False)
    wf.step(name="only")(lambda ctx: "done")
    run_id = _engine(store, wf).start(wf)
    # An owner on another machine claims the run and dies: only its lease can tell.
    assert store.claim_run("elsewhere/1/dead", 0.5, run_id=run_id) is not None
    worker = Worker(
        _engine(store, wf, lease_seconds=1.0),
        poll_interval=0.05,
        schedules=False,
        workflows=[wf.name],
    )
    stats = worker.run(until_idle=True)
    assert stats.succeeded == 1
    run = store.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.SUCCEEDED


def test_a_result_whose_json_does_not_read_back_fails_once(store: Store) -> None:
    wf = Workflow("nan", register=False)
    calls: list[int] = []

    @wf.step(retry=RETRY)
    def ratio(ctx: StepContext) -> float:
        calls.append(ctx.attempt)
        return float("nan")  # written as null, which is not a float

    with pytest.raises(ConfigError, match=r"step 'ratio' of run \w+ returned float whose JSON"):
        _engine(store, wf).run_workflow(wf)
    assert calls == [1]
    [run] = store.list_runs()
    assert run.status is RunStatus.FAILED


def test_a_worker_leaves_a_run_of_another_version_to_a_worker_of_that_version(
    store: Store,
) -> None:
    """A rolling deploy: old and new workers side by side; each takes only its version's runs."""
    started = Workflow("versioned", version="1", register=False)
    started.step(name="only")(lambda ctx: 1)
    deployed = Workflow("versioned", version="2", register=False)
    deployed.step(name="only")(lambda ctx: 2)
    run_id = _engine(store, started).start(started)
    new_worker = Worker(
        _engine(store, deployed, lease_seconds=1.0),
        poll_interval=0.05,
        schedules=False,
        workflows=[deployed.name],
    )
    stats = new_worker.run(until_idle=True)
    run = store.get_run(run_id)
    assert run is not None
    # Not claimed, so not refused, not failed, no attempt burnt (was: failed by the new code).
    assert (run.status, run.attempts, run.error) == (RunStatus.PENDING, 0, None)
    assert (stats.errors, stats.claimed) == (0, 0)
    old_worker = Worker(
        _engine(store, started, lease_seconds=1.0),
        poll_interval=0.05,
        schedules=False,
        workflows=[started.name],
    )
    assert old_worker.run(until_idle=True).claimed == 1
    run = store.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.SUCCEEDED


def test_a_worker_fails_a_run_whose_steps_changed_under_the_same_version_once(
    store: Store,
) -> None:
    started = Workflow("regraphed", version="1", register=False)
    started.step(name="only")(lambda ctx: 1)
    changed = Workflow("regraphed", version="1", register=False)
    changed.step(name="renamed")(lambda ctx: 2)
    run_id = _engine(store, started).start(started)
    worker = Worker(
        _engine(store, changed, lease_seconds=1.0),
        poll_interval=0.05,
        schedules=False,
        workflows=[changed.name],
    )
    stats = worker.run(until_idle=True)
    run = store.get_run(run_id)
    assert run is not None
    # Not handed back to be refused by every worker until it is "dead" for dying processes.
    assert run.status is RunStatus.FAILED
    assert run.attempts == 1
    assert run.error is not None
    assert "keeps dying" not in run.error
    assert (stats.errors, stats.claimed) == (1, 1)
    # The code that started it resumes it.
    assert _engine(store, started).resume(run_id) == 1


def test_a_helper_hands_back_an_item_it_refuses_at_once_with_the_reason(store: Store) -> None:
    if store.engine.dialect.name == "sqlite":
        pytest.skip("the item queue is for workers on PostgreSQL")
    flow = _Tickets("refused-items", count=6)
    flow.crash_on = "t-1"
    owner = _engine(store, flow.workflow, distribute_items=True, lease_seconds=30)
    run_id = owner.start(flow.workflow)
    with pytest.raises(Crash):
        owner.run(run_id)  # dies inside t-1: the items after it are queued, pending
    _join_heartbeats()

    deployed = Workflow("refused-items", version="2", register=False)
    deployed.step(name="tickets")(lambda ctx: [])
    deployed.map_step(over="tickets", key=lambda t: t["id"], concurrency=1, name="create")(
        lambda ctx, item: ""
    )
    deployed.step(name="report", depends_on=("create",))(lambda ctx, create: 0)
    helper = _engine(store, deployed, lease_seconds=30)
    with pytest.raises(DefinitionMismatch, match="version 1"):
        helper.work_items(limit=1, batch=1)
    items = {s.item_key: s for s in store.load_steps(run_id) if s.item_key}
    assert items["t-1"].status is StepStatus.RUNNING  # the dead owner's, until its lease ends
    refused = [s for s in items.values() if s.error and "refused by" in s.error]
    assert len(refused) == 1
    assert refused[0].status is StepStatus.PENDING  # not held until a lease expires
    assert "started by version 1" in (refused[0].error or "")
    assert {s.status for k, s in items.items() if k not in ("t-0", "t-1")} == {StepStatus.PENDING}
    # It takes no more items of that run (each claim would count towards the item's limit).
    assert helper.work_items(limit=1, batch=1) == 0
    assert flow.effects == [f"{run_id}/create/t-0", f"{run_id}/create/t-1"]
