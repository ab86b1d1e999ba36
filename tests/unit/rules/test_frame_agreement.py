"""A rule set gives the same matches from evaluate_many (row) and evaluate_frame (columnar) on
tables that once broke the columnar path, and a table it cannot use is one clear error."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from reclaim.errors import ExecutionError
from reclaim.rules import RuleSet, load_rules_text
from reclaim.rules.expression import EvaluationError

USER_FORMAT = """
rules:
  - id: complete
    condition: invoice_number and issue_date and vendor_id
  - id: has-number
    condition: invoice_number
  - id: dev
    condition: lower(env) == 'dev'
  - id: prod-name
    condition: matches(name, '^prod')
  - id: big-delta
    condition: abs(delta) > 5
"""


def _fired_by_row(ruleset: RuleSet, facts: list[dict[str, Any]]) -> list[tuple[int, str]]:
    outcomes = ruleset.evaluate_many(facts)
    return [(index, rule_id) for index, o in enumerate(outcomes) for rule_id in o.fired]


def _fired_by_frame(ruleset: RuleSet, facts: list[dict[str, Any]]) -> list[tuple[int, str]]:
    matches = ruleset.evaluate_frame(pl.DataFrame(facts))
    return list(zip(matches["row"].to_list(), matches["rule_id"].to_list(), strict=True))


@pytest.mark.parametrize(
    "facts",
    [
        [{"invoice_number": "A-1"}],
        [{"invoice_number": "A-1", "issue_date": "2024-01-01", "vendor_id": 7}],
        [{"invoice_number": None, "env": None, "name": None, "delta": None}] * 2,
        [{"invoice_number": "", "env": "DEV", "name": "prod-1", "delta": -6}, {"env": None}],
        [{"invoice_number": 0}, {"invoice_number": 12}],
    ],
)
def test_row_and_columnar_fire_the_same_rules(facts: list[dict[str, Any]]) -> None:
    ruleset = load_rules_text(USER_FORMAT)
    assert _fired_by_frame(ruleset, facts) == _fired_by_row(ruleset, facts)


def test_a_column_the_rule_cannot_use_is_one_error_naming_the_rule() -> None:
    ruleset = load_rules_text(
        "rules:\n  - {id: ok, condition: x == 1}\n  - {id: listy, condition: tags > 5}\n",
        "r.yaml",
    )
    with pytest.raises(EvaluationError) as caught:
        ruleset.evaluate_frame(pl.DataFrame({"x": [1], "tags": [[1, 2]]}))
    message = str(caught.value)
    assert message.startswith("r.yaml:3:")
    assert "rule 'listy'" in message
    assert "'tags > 5'" in message
    assert "\n" not in message
    assert "declare the fields' types" in message


def test_explain_names_the_rule_a_fact_breaks() -> None:
    ruleset = load_rules_text("rules:\n  - {id: listy, condition: tags > 5}\n", "r.yaml")
    with pytest.raises(ExecutionError) as caught:
        ruleset.explain({"tags": [1]})
    assert str(caught.value).startswith("r.yaml:2:5: rule 'listy': cannot evaluate 'tags > 5'")
