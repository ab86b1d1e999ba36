"""explain: every rule, fired or not, with actual and expected values."""

from __future__ import annotations

from typing import Any

import pytest

from reclaim.errors import ConfigError
from reclaim.rules import load_rules_text

RULES = """
mode: first
rules:
  - id: idle
    priority: 5
    when: cpu < 10 and cost > 50
    action: recommend
    params: {type: rightsize, savings: cost * 0.5}
  - id: cheap
    when: cost < 100
  - id: busy
    when: cpu > 80
  - id: off
    enabled: false
    when: "True"
"""


def test_explain_lists_every_rule_with_its_status() -> None:
    ruleset = load_rules_text(RULES, "r.yaml")
    explanation = ruleset.explain({"cpu": 4.2, "cost": 60})
    statuses = {item.rule_id: item.status for item in explanation.rules}
    assert statuses == {
        "idle": "fired",
        "cheap": "shadowed",
        "busy": "not matched",
        "off": "disabled",
    }
    assert explanation.fired == ["idle"]
    idle = explanation.rules[0]
    assert idle.params == {"type": "rightsize", "savings": 30.0}
    assert str(idle.location) == "r.yaml:4:5"
    # The fired and the not-fired rule both show actual against expected values.
    text = explanation.render()
    assert "cpu < 10" in text
    assert "4.2 < 10" in text
    assert "cpu > 80" in text
    assert "4.2 > 80" in text
    assert "✓ idle: fired" in text
    assert "✗ busy: did not match" in text
    assert "savings = 30.0" in text


def test_explain_agrees_with_evaluate() -> None:
    ruleset = load_rules_text(RULES.replace("mode: first", "mode: all"))
    for fact in ({"cpu": 4, "cost": 60}, {"cpu": 90, "cost": 500}, {}):
        assert ruleset.explain(fact).fired == ruleset.evaluate(fact).fired


def test_explain_follows_context_in_ordered_mode() -> None:
    ruleset = load_rules_text(
        "mode: ordered\nrules:\n  - {id: a, when: x > 0, action: set, params: {y: 5}}\n"
        "  - {id: b, when: y == 5}\n"
    )
    explanation = ruleset.explain({"x": 1})
    assert explanation.fired == ["a", "b"]
    assert explanation.context == {"x": 1, "y": 5}


def test_explain_one_rule_and_unknown_rule() -> None:
    ruleset = load_rules_text(RULES)
    only = ruleset.explain({"cpu": 90, "cost": 10}, rule_ids=["busy"])
    assert [item.rule_id for item in only.rules] == ["busy"]
    with pytest.raises(ConfigError, match="has no rule 'bussy'"):
        ruleset.explain({}, rule_ids=["bussy"])


def test_explain_builds_the_trees_of_the_asked_rules_only(monkeypatch: pytest.MonkeyPatch) -> None:
    ruleset = load_rules_text(RULES, "r.yaml")
    condition_type = type(ruleset.rules[0].condition)
    built: list[str] = []
    original = condition_type.explain

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        built.append(self.source)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(condition_type, "explain", spy)
    only = ruleset.explain({"cpu": 4.2, "cost": 60}, rule_ids=["cheap"])
    assert built == ["cost < 100"]
    # 'idle' fired first (mode first), though it is not shown: 'cheap' is shadowed.
    assert [(rule.rule_id, rule.status) for rule in only.rules] == [("cheap", "shadowed")]


def test_explain_of_some_rules_still_applies_what_hidden_rules_set() -> None:
    ruleset = load_rules_text(
        """
mode: ordered
rules:
  - id: tag
    when: cost > 10
    action: set
    params: {tier: "'big'"}
  - id: big
    when: tier == 'big'
""",
        "r.yaml",
    )
    only = ruleset.explain({"cost": 50}, rule_ids=["big"])
    assert [(rule.rule_id, rule.status) for rule in only.rules] == [("big", "fired")]
