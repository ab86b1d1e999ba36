"""Evaluation modes and their tie-breaks, actions, and the columnar evaluator's output."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

import polars as pl
import pytest

from reclaim.errors import ExecutionError
from reclaim.rules import ACTIONS, RuleSet, load_rules_text, register_action
from reclaim.rules.expression import EvaluationError

MODES_TEXT = """
mode: {mode}
rules:
  - {{id: low, when: x > 0, action: set, params: {{label: "'low'"}}}}
  - {{id: high-a, priority: 5, when: x > 1, action: set, params: {{label: "'high-a'"}}}}
  - {{id: high-b, priority: 5, when: x > 1, action: set, params: {{label: "'high-b'"}}}}
  - {{id: top, priority: 9, when: x > 2, action: set, params: {{label: "'top'"}}}}
"""


def _load(mode: str) -> RuleSet:
    return load_rules_text(MODES_TEXT.format(mode=mode))


def test_all_lists_every_match_by_priority_then_file_order() -> None:
    ruleset = _load("all")
    assert ruleset.evaluate({"x": 3}).fired == ["top", "high-a", "high-b", "low"]
    assert ruleset.evaluate({"x": 2}).fired == ["high-a", "high-b", "low"]
    assert ruleset.evaluate({"x": 0}).fired == []
    # Conditions see the fact as given; the context collects every set, the last one wins.
    assert ruleset.evaluate({"x": 3}).context["label"] == "low"


def test_first_keeps_the_highest_priority_and_breaks_ties_by_file_order() -> None:
    ruleset = _load("first")
    assert ruleset.evaluate({"x": 3}).fired == ["top"]
    assert ruleset.evaluate({"x": 2}).fired == ["high-a"]
    assert ruleset.evaluate({"x": 1}).fired == ["low"]


def test_ordered_runs_in_file_order_and_later_actions_see_and_win() -> None:
    ruleset = load_rules_text(
        """
        mode: ordered
        rules:
          - {id: base, when: "True", action: set, params: {score: 1}}
          - {id: double, when: score >= 1, action: set, params: {score: score * 2}}
          - {id: bonus, when: score == 2 and vip, action: set, params: {score: score + 10}}
          - {id: label, when: score > 5, action: set, params: {label: "'big'"}}
        """.replace("\n        ", "\n")
    )
    vip = ruleset.evaluate({"vip": True})
    assert vip.fired == ["base", "double", "bonus", "label"]
    assert vip.context == {"vip": True, "score": 12, "label": "big"}
    plain = ruleset.evaluate({"vip": False})
    assert plain.fired == ["base", "double"]
    assert plain.context["score"] == 2
    # The fact itself is never modified.
    fact = {"vip": True}
    ruleset.evaluate(fact)
    assert fact == {"vip": True}


def test_ordered_mode_ignores_priority_by_refusing_it() -> None:
    ruleset = load_rules_text(
        "mode: ordered\nrules:\n  - {id: a, when: x > 0}\n  - {id: b, when: x > 0}\n"
    )
    assert ruleset.evaluate({"x": 1}).fired == ["a", "b"]


def test_disabled_rules_never_fire() -> None:
    ruleset = load_rules_text(
        "rules:\n  - {id: a, when: x > 0, enabled: false}\n  - {id: b, when: x > 0}\n"
    )
    assert ruleset.evaluate({"x": 1}).fired == ["b"]


def test_null_conditions_do_not_match() -> None:
    ruleset = load_rules_text("rules:\n  - {id: a, when: x > 0}\n  - {id: b, when: not (x > 0)}\n")
    assert ruleset.evaluate({}).fired == []
    assert ruleset.evaluate({"x": None}).fired == []


def test_params_are_expressions_templates_and_literals() -> None:
    ruleset = load_rules_text(
        """
rules:
  - id: idle
    when: cpu < 5
    action: recommend
    params:
      type: rightsize
      title: "Idle {name} at {cpu}% {{cpu}}"
      savings: cost * 0.7
      extra: [1, 2]
"""
    )
    (match,) = ruleset.evaluate({"cpu": 2, "cost": 100, "name": "vm-1"}).matches
    assert match.action == "recommend"
    assert dict(match.params) == {
        "type": "rightsize",
        "title": "Idle vm-1 at 2% {cpu}",
        "savings": 70.0,
        "extra": [1, 2],
    }
    # A null placeholder makes the whole text null, as in SQL.
    (match,) = ruleset.evaluate({"cpu": 2, "cost": 100}).matches
    assert match.params["title"] is None


def test_verdict_is_the_strictest_decision() -> None:
    ruleset = load_rules_text(
        """
rules:
  - {id: w, when: x > 1, action: verdict, params: {decision: warn}}
  - {id: d, when: x > 2, action: verdict, params: {decision: deny, message: "x is {x}"}}
  - {id: a, when: x > 0, action: verdict, params: {decision: allow}}
"""
    )
    assert ruleset.evaluate({"x": 3}).verdict == "deny"
    assert ruleset.evaluate({"x": 2}).verdict == "warn"
    assert ruleset.evaluate({"x": 1}).verdict == "allow"
    assert ruleset.evaluate({"x": 0}).verdict is None
    deny = [m for m in ruleset.evaluate({"x": 3}).of_action("verdict") if m.rule_id == "d"]
    assert deny[0].params["message"] == "x is 3"


def test_host_actions_get_the_fact_and_params_and_can_be_skipped() -> None:
    registry = ACTIONS.copy()
    seen: list[tuple[dict[str, Any], dict[str, Any]]] = []

    @register_action(
        "notify",
        registry=registry,
        schema={
            "type": "object",
            "properties": {"channel": {"type": "string"}, "amount": {"x-kind": "expression"}},
        },
    )
    def notify(fact: Mapping[str, Any], channel: str, amount: float) -> str:
        seen.append((dict(fact), {"channel": channel, "amount": amount}))
        return f"sent to {channel}"

    ruleset = load_rules_text(
        "rules:\n  - {id: n, when: x > 0, action: notify, params: {channel: ops, amount: x * 2}}\n",
        actions=registry,
    )
    outcome = ruleset.evaluate({"x": 4})
    assert outcome.matches[0].result == "sent to ops"
    assert seen == [({"x": 4}, {"channel": "ops", "amount": 8})]
    skipped = ruleset.evaluate({"x": 4}, run_actions=False)
    assert skipped.matches[0].result is None
    assert skipped.matches[0].params == {"channel": "ops", "amount": 8}
    assert len(seen) == 1


def test_a_failing_host_action_is_an_execution_error() -> None:
    registry = ACTIONS.copy()

    def boom(fact: Mapping[str, Any]) -> None:
        raise RuntimeError("no network")

    registry.register("boom", boom)
    ruleset = load_rules_text("rules:\n  - {id: b, when: 'True', action: boom}\n", actions=registry)
    with pytest.raises(ExecutionError, match="action 'boom' of rule 'b' failed: no network"):
        ruleset.evaluate({})


def test_host_action_updating_the_context_in_ordered_mode() -> None:
    registry = ACTIONS.copy()
    registry.register(
        "classify",
        lambda fact: {"tier": "gold" if fact["spend"] > 10 else "basic"},
        updates_context=True,
    )
    ruleset = load_rules_text(
        "mode: ordered\nrules:\n  - {id: c, when: 'True', action: classify}\n"
        "  - {id: g, when: tier == 'gold'}\n",
        actions=registry,
    )
    assert ruleset.evaluate({"spend": 20}).fired == ["c", "g"]
    assert ruleset.evaluate({"spend": 1}).fired == ["c"]


def test_now_is_passed_to_conditions() -> None:
    ruleset = load_rules_text("rules:\n  - {id: old, when: days_since(created) > 30}\n")
    created = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    fact = {"created": created}
    assert ruleset.evaluate(fact, now=created + datetime.timedelta(days=31)).fired == ["old"]
    assert ruleset.evaluate(fact, now=created + datetime.timedelta(days=3)).fired == []


def test_evaluate_frame_returns_one_row_per_match() -> None:
    ruleset = _load("all")
    frame = pl.DataFrame({"x": [3, None, 1]})
    matches = ruleset.evaluate_frame(frame)
    assert matches.columns == ["row", "rule_id", "action", "priority", "params"]
    assert matches.select("row", "rule_id").rows() == [
        (0, "top"),
        (0, "high-a"),
        (0, "high-b"),
        (0, "low"),
        (2, "low"),
    ]
    assert matches["params"].struct.field("label").to_list() == [
        "top",
        "high-a",
        "high-b",
        "low",
        "low",
    ]


def test_evaluate_frame_first_and_ordered() -> None:
    frame = pl.DataFrame({"x": [3, 2, 1, 0]})
    first = _load("first").evaluate_frame(frame)
    assert first.select("row", "rule_id").rows() == [(0, "top"), (1, "high-a"), (2, "low")]
    ordered = load_rules_text(
        "mode: ordered\nrules:\n  - {id: a, when: x > 0, action: set, params: {y: x * 10}}\n"
        "  - {id: b, when: y > 15, action: set, params: {y: y + 1}}\n"
        "  - {id: c, when: y > 20, action: recommend, params: {type: t, savings: y}}\n"
    )
    result = ordered.evaluate_frame(frame)
    assert result.select("row", "rule_id").rows() == [
        (0, "a"),
        (0, "b"),
        (0, "c"),
        (1, "a"),
        (1, "b"),
        (1, "c"),
        (2, "a"),
    ]
    savings = result.filter(pl.col("rule_id") == "c")["params"].struct.field("savings")
    assert savings.to_list() == [31, 21]


def test_evaluate_frame_with_no_match_and_missing_columns() -> None:
    ruleset = load_rules_text(
        "rules:\n  - {id: a, when: absent > 1, action: set, params: {z: 1}}\n"
    )
    result = ruleset.evaluate_frame(pl.DataFrame({"x": [1, 2]}))
    assert result.height == 0
    assert result.columns == ["row", "rule_id", "action", "priority", "params"]


def test_evaluate_frame_with_absent_and_all_null_declared_columns() -> None:
    ruleset = load_rules_text(
        "facts: {owner: string, cost: number}\nvars: {watch: [a, b]}\n"
        "rules:\n  - {id: w, when: owner in watch}\n  - {id: c, when: cost > 1}\n"
    )
    assert ruleset.evaluate_frame(pl.DataFrame({"x": [1, 2, 3]})).height == 0
    frame = pl.DataFrame({"owner": [None, None], "cost": [None, 5.0]})
    assert frame.schema["owner"] == pl.Null
    assert ruleset.evaluate_frame(frame).select("row", "rule_id").rows() == [(1, "c")]


def test_route_labels_are_templates() -> None:
    ruleset = load_rules_text(
        "rules:\n  - id: r\n    when: 'True'\n    action: route\n"
        "    params: {team: ops, labels: [finops, 'env-{env}']}\n"
    )
    (match,) = ruleset.evaluate({"env": "dev"}).matches
    assert match.params == {"team": "ops", "labels": ["finops", "env-dev"]}
    frame = ruleset.evaluate_frame(pl.DataFrame({"env": ["dev", "prod"]}))
    assert frame["params"].struct.field("labels").to_list() == [
        ["finops", "env-dev"],
        ["finops", "env-prod"],
    ]


def test_lists_in_expression_params_are_taken_as_written() -> None:
    ruleset = load_rules_text(
        "rules:\n  - id: r\n    when: 'True'\n    action: set\n"
        "    params: {names: [alice, bob], computed: '[x, x * 2]'}\n"
    )
    (match,) = ruleset.evaluate({"x": 2}).matches
    assert match.params == {"names": ["alice", "bob"], "computed": [2, 4]}


def test_evaluate_frame_with_all_null_undeclared_columns() -> None:
    ruleset = load_rules_text(
        "vars: {watch: [a]}\nrules:\n  - {id: w, when: owner in watch}\n"
        "  - id: c\n    when: cost > 1\n    action: route\n"
        "    params: {team: 't-{owner}', labels: ['{owner}']}\n"
    )
    facts = [{"owner": None, "cost": None}, {"owner": None, "cost": 5.0}]
    for frame in (pl.DataFrame(facts), pl.DataFrame({"cost": [None, 5.0]})):
        result = ruleset.evaluate_frame(frame)
        assert result.select("row", "rule_id").rows() == [(1, "c")]
        assert result["params"].to_list() == [{"team": None, "labels": [None]}]
    (match,) = ruleset.evaluate(facts[1]).matches
    assert match.params == {"team": None, "labels": [None]}


ROW_ERRORS = """
facts: {x: number, s: string, n: number}
rules:
  - id: fine
    when: s == 'a'
  - id: big
    when: x > 1
  - id: priced
    when: s == 'b'
    action: emit
    params: {type: t, savings: abs(n)}
  - id: tagger
    when: s == 'zzz'
    action: set
    params: {tier: "'x'"}
"""


@pytest.mark.parametrize("mode", ["all", "first", "ordered"])
@pytest.mark.parametrize("how", ["evaluate", "evaluate_many"])
def test_a_row_evaluation_error_names_the_rule_and_its_place(mode: str, how: str) -> None:
    ruleset = load_rules_text(f"mode: {mode}\n{ROW_ERRORS}", "r.yaml")

    def run(fact: dict[str, Any]) -> object:
        return ruleset.evaluate(fact) if how == "evaluate" else ruleset.evaluate_many([fact])

    with pytest.raises(EvaluationError) as condition:
        run({"x": "a", "s": "a"})
    assert str(condition.value).startswith("r.yaml:7:5: rule 'big': cannot evaluate 'x > 1'")
    with pytest.raises(EvaluationError) as param:
        run({"x": 0.0, "s": "b", "n": "a"})
    assert "rule 'priced'" in str(param.value)
    assert str(param.value).startswith("r.yaml:9:5: ")
