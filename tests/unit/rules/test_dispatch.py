"""How a RuleSet calls its compiled rules (issue 9, item 12): one compiled call per fact, and
the matches of rules whose parameters are constants built once, not once per fact."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from reclaim.rules import ActionRegistry, load_rules_text
from reclaim.rules.actions import ACTIONS

RULES = """
facts: {cpu: number, cost: number, env: string}
rules:
  - id: idle
    when: cpu < 10
    action: emit
    params: {type: flag}
  - id: costly
    when: cost > 100
    action: emit
    params: {type: flag, amount: cost * 2}
  - id: dev
    when: env == 'dev'
"""

FACTS: list[dict[str, Any]] = [
    {"cpu": 1, "cost": 500, "env": "dev"},
    {"cpu": 2, "cost": 5, "env": "prod"},
    {"cpu": 50, "cost": 200, "env": "dev"},
    {"cpu": 3, "cost": 7, "env": "prod"},
    {"cpu": 80, "cost": 1, "env": "prod"},
]


def test_constant_matches_are_built_once_and_shared() -> None:
    ruleset = load_rules_text(RULES, "r.yaml")
    outcomes = ruleset.evaluate_many(FACTS)
    assert [outcome.fired for outcome in outcomes] == [
        ["idle", "costly", "dev"],
        ["idle"],
        ["costly", "dev"],
        ["idle"],
        [],
    ]
    first_idle = outcomes[0].matches[0]
    assert outcomes[1].matches[0] is first_idle
    assert outcomes[3].matches[0] is first_idle
    assert outcomes[0].matches[2] is outcomes[2].matches[1]
    # A parameter computed from the fact is never shared.
    assert outcomes[0].matches[1].params == {"type": "flag", "amount": 1000.0}
    assert outcomes[2].matches[0].params == {"type": "flag", "amount": 400.0}
    assert outcomes[0].matches[1] is not outcomes[2].matches[0]
    # evaluate() one fact at a time gives the same matches.
    assert [ruleset.evaluate(fact).fired for fact in FACTS] == [o.fired for o in outcomes]
    assert ruleset.evaluate(FACTS[3]).matches[0] is first_idle


def test_one_compiled_call_per_fact() -> None:
    ruleset = load_rules_text(RULES, "r.yaml")
    compiled = ruleset.predicate_mask
    calls: list[Any] = []

    def counting(fact: Any, now: Any = None) -> int:
        calls.append(fact)
        result: int = compiled(fact, now)
        return result

    ruleset.__dict__["predicate_mask"] = counting
    ruleset.evaluate_many(FACTS)
    assert calls == FACTS


def test_the_mask_has_one_bit_per_rule_in_evaluation_order() -> None:
    ruleset = load_rules_text(RULES, "r.yaml")
    assert ruleset.predicate_mask(FACTS[0], None) == 0b111
    assert ruleset.predicate_mask(FACTS[2], None) == 0b110
    assert ruleset.predicate_mask(FACTS[4], None) == 0


def test_mode_first_keeps_only_the_first_match() -> None:
    ruleset = load_rules_text("mode: first\n" + RULES, "r.yaml")
    assert [outcome.fired for outcome in ruleset.evaluate_many(FACTS)] == [
        ["idle"],
        ["idle"],
        ["costly"],
        ["idle"],
        [],
    ]


def test_host_actions_are_called_for_every_fact() -> None:
    calls: list[Any] = []
    registry: ActionRegistry = ACTIONS.copy()

    def note(fact: Any) -> str:
        calls.append(dict(fact))
        return "noted"

    registry.register("note", note, replace=True)
    ruleset = load_rules_text(
        "rules:\n  - id: r\n    when: cpu < 10\n    action: note\n", "r.yaml", actions=registry
    )
    outcomes = ruleset.evaluate_many(FACTS)
    assert len(calls) == 3
    assert [outcome.matches[0].result for outcome in outcomes if outcome.matches] == ["noted"] * 3


def test_many_rules_compile_into_one_mask() -> None:
    rules = "".join(f"  - id: r{i}\n    when: x >= {i}\n" for i in range(300))
    ruleset = load_rules_text("rules:\n" + rules, "r.yaml")
    outcome = ruleset.evaluate({"x": 299})
    assert len(outcome.matches) == 300
    assert ruleset.evaluate({"x": 0}).fired == ["r0"]


@pytest.mark.parametrize("mode", ["all", "first"])
def test_the_frame_gives_the_same_matches_as_the_rows(mode: str) -> None:
    ruleset = load_rules_text(f"mode: {mode}\n" + RULES, "r.yaml")
    matches = ruleset.evaluate_frame(pl.DataFrame(FACTS))
    by_row: list[list[str]] = [[] for _ in FACTS]
    for row, rule_id in zip(matches["row"], matches["rule_id"], strict=True):
        by_row[row].append(rule_id)
    assert by_row == [outcome.fired for outcome in ruleset.evaluate_many(FACTS)]
    amounts = [p["amount"] for p in matches["params"].to_list() if p["amount"] is not None]
    assert amounts == ([1000.0, 400.0] if mode == "all" else [400.0])
