"""Loading a rule file and compiling its first evaluation leave the garbage collector be.

Both build hundreds of thousands of objects that stay alive until the step ends; collections
set off during it walked them again and again (two thirds of a 2,000-rule first evaluation).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from reclaim.rules import load_rules_text

RULES = "facts: {cpu: number, env: string}\nrules:\n" + "".join(
    f"  - id: r{i}\n    when: cpu < {i} and env == 'dev' or cpu > {i * 2}\n" for i in range(300)
)


@pytest.fixture
def collections() -> Iterator[list[int]]:
    seen: list[int] = []

    def record(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    gc.callbacks.append(record)
    try:
        yield seen
    finally:
        gc.callbacks.remove(record)


def test_loading_a_large_file_sets_off_no_collection(collections: list[int]) -> None:
    load_rules_text(RULES, "many.yaml")
    collections.clear()
    # A few allocations before the pause begins must not meet a nearly full youngest
    # generation left by earlier tests: start from an empty one.
    gc.collect()
    collections.clear()
    load_rules_text(RULES, "many.yaml")
    assert collections == []


def test_compiling_the_first_evaluation_sets_off_no_collection() -> None:
    # Once per process, the first evaluation imports the engine (and Polars): not measured.
    load_rules_text("rules: [{id: a, when: cpu > 1}]", "one.yaml").evaluate({"cpu": 2})
    ruleset = load_rules_text(RULES, "many.yaml")
    assert len(ruleset.active_rules) == 300  # sorted once, before the compilation measured
    seen: list[int] = []

    def record(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    gc.collect()  # as above: start from an empty youngest generation
    gc.callbacks.append(record)
    try:
        mask = ruleset.predicate_mask  # the one function of every condition, compiled now
    finally:
        gc.callbacks.remove(record)
    assert seen == []
    fact = {"cpu": 5.0, "env": "dev"}
    expected = sum(
        1 << index
        for index, rule in enumerate(ruleset.active_rules)
        if rule.condition.matches(fact)
    )
    assert mask(fact, None) == expected


def test_the_collector_is_on_again_afterwards() -> None:
    assert gc.isenabled()
    load_rules_text(RULES, "many.yaml").evaluate({"cpu": 5.0, "env": "dev"})
    assert gc.isenabled()
    gc.disable()
    try:
        load_rules_text(RULES, "many.yaml")
        assert not gc.isenabled()  # a caller that turned it off keeps it off
    finally:
        gc.enable()
