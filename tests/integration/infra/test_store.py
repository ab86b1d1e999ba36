"""The orchestrator's store on SQLite and PostgreSQL: stack locks, intents, output history."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from reclaim.infra import InfraStore, StateMark
from reclaim.store import upgrade


@pytest.fixture
def store(engine: Engine) -> InfraStore:
    upgrade(engine)
    return InfraStore(engine)


def test_a_stack_lock_is_held_by_one_run_until_released_or_expired(store: InfraStore) -> None:
    assert store.acquire("network", "run-a", 60) is None
    assert store.acquire("network", "run-b", 60) == "run-a"
    assert store.acquire("network", "run-a", 60) is None  # a resumed run keeps its stacks
    assert store.acquire("app", "run-b", 60) is None
    assert store.locks() == {"network": "run-a", "app": "run-b"}
    store.release("network", "run-b")  # not the holder: nothing happens
    assert store.acquire("network", "run-b", 60) == "run-a"
    store.release("network", "run-a")
    assert store.acquire("network", "run-b", 60) is None
    # An expired lease (its holder died) is taken over; renewing keeps a live one.
    assert store.acquire("dns", "run-dead", -1) is None
    assert store.acquire("dns", "run-c", 60) is None
    assert store.renew("run-c", 60) == 1
    assert store.acquire("dns", "run-dead", 60) == "run-c"


def test_an_intent_keeps_the_state_it_was_planned_from(store: InfraStore) -> None:
    base = StateMark(3, "lineage-1")
    store.record_intent("run-a", "network", base)
    store.record_intent("run-a", "network", StateMark(9, "other"))  # a re-run: no-op
    intent = store.intent("run-a", "network")
    assert intent is not None
    assert intent.base == base
    assert intent.outcome is None
    store.finish_apply("run-a", "network", StateMark(4, "lineage-1"), "applied")
    intent = store.intent("run-a", "network")
    assert intent is not None
    assert intent.outcome == "applied"
    assert intent.result.moved_on_from(base)
    assert not StateMark(4, "lineage-2").moved_on_from(base)
    assert not base.moved_on_from(base)
    assert StateMark(1, "x").moved_on_from(StateMark(None, None))
    assert store.intent("run-b", "network") is None


def test_outputs_get_a_new_version_only_when_they_change(store: InfraStore) -> None:
    first, changed = store.record_outputs("network", "run-1", {"vpc": "a"})
    assert (first.version, changed) == (1, True)
    again, changed = store.record_outputs("network", "run-1", {"vpc": "a"})
    assert (again.version, changed) == (1, True)  # the same run recorded twice: same answer
    same, changed = store.record_outputs("network", "run-2", {"vpc": "a"})
    assert (same.version, changed) == (1, False)
    second, changed = store.record_outputs("network", "run-3", {"vpc": "b"})
    assert (second.version, changed) == (2, True)
    assert [v.outputs for v in store.output_versions("network")] == [{"vpc": "a"}, {"vpc": "b"}]
    assert store.record_global("run-3", {"network": {"vpc": "b"}}) == (1, True)
    assert store.record_global("run-4", {"network": {"vpc": "b"}}) == (1, False)
    assert store.record_global("run-5", {"network": {"vpc": "c"}}) == (2, True)
    assert [(v, run) for v, run, _at, _doc in store.global_versions()] == [
        (1, "run-3"),
        (2, "run-5"),
    ]
