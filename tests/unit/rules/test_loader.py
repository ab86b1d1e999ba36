"""Loading rule files: the user's first format, and every error with its file:line:col."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from reclaim.rules import (
    ActionParamsError,
    ActionRegistry,
    DuplicateRuleIdError,
    ExpressionError,
    RuleFileError,
    RuleSchemaError,
    TypeMismatchError,
    UnknownActionError,
    UnknownKeyError,
    load_rules,
    load_rules_text,
)
from reclaim.rules.actions import ACTIONS

FIXTURES = Path(__file__).parent / "fixtures"
WriteYaml = Callable[..., Path]


def _user_registry(calls: list[tuple[str, dict[str, Any]]]) -> ActionRegistry:
    registry = ACTIONS.copy()
    for name in ("offer_discount", "flag_for_review", "process_invoice", "close_invoice"):

        def action(fact: Mapping[str, Any], _name: str = name) -> str:
            calls.append((_name, dict(fact)))
            return f"{_name} done"

        registry.register(name, action, replace=True)
    return registry


def test_the_users_first_format_loads_unchanged() -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    ruleset = load_rules(
        FIXTURES / "user_format.yaml",
        actions=_user_registry(calls),
        constants={"credit_watch_list": ["Acme", "Globex"]},
    )
    assert [rule.id for rule in ruleset.rules] == [
        "discount_low_utilization",
        "watch_credit",
        "invoice_complete",
        "invoice_paid",
    ]
    assert ruleset.kind == "plain"
    assert ruleset.mode == "all"

    outcome = ruleset.evaluate({"utilization": 0.5, "customer_age": 200, "customer_name": "Acme"})
    assert outcome.fired == ["discount_low_utilization", "watch_credit"]
    assert [name for name, _ in calls] == ["offer_discount", "flag_for_review"]
    assert outcome.matches[0].result == "offer_discount done"

    invoice = {"invoice_number": "INV-1", "issue_date": "2026-01-01", "vendor_id": "V1"}
    assert ruleset.evaluate(invoice).fired == ["invoice_complete"]
    assert ruleset.evaluate({**invoice, "vendor_id": ""}).fired == []
    assert ruleset.evaluate({"status": "paid"}).fired == ["invoice_paid"]
    assert ruleset.evaluate({"status": "open"}).fired == []


def test_vars_in_the_file_provide_the_constants(write_yaml: WriteYaml) -> None:
    path = write_yaml(
        """
        vars:
          credit_watch_list: [Initech]
        rules:
          - name: watch_credit
            condition: customer_name in credit_watch_list
            action: recommend
            params: {type: review}
        """
    )
    ruleset = load_rules(path)
    assert ruleset.evaluate({"customer_name": "Initech"}).fired == ["watch_credit"]
    assert ruleset.evaluate({"customer_name": "Acme"}).fired == []


def _errors(path: Path, **kwargs: Any) -> list[str]:
    with pytest.raises(RuleFileError) as caught:
        load_rules(path, **kwargs)
    return [str(error) for error in caught.value.errors]


def test_all_errors_of_a_file_are_reported_together_each_on_one_line(
    write_yaml: WriteYaml,
) -> None:
    path = write_yaml(
        """
        kind: savings
        mdoe: all
        facts: {cpu_avg: number, monthly_cost: number, state: string}
        rules:
          - id: idle
            when: cpu_avgg < 10
            action: recommend
            params: {type: delete, savings: state}
          - id: idle
            conditon: x
            when: cpu_avg <
          - id: third
            when: monthly_cost > 5
            action: recomend
          - id: fourth
            when: monthly_cost
            action: route
            params: {team: "{state", colour: red}
        """
    )
    errors = _errors(path)
    p = str(path)
    assert errors == [
        f"{p}:2:1: unknown key 'mdoe'; did you mean 'mode'?",
        f"{p}:6:11: unknown field 'cpu_avgg'; did you mean 'cpu_avg'?",
        f"{p}:8:37: rule 'idle': parameter 'savings' of 'recommend' must be number, but the "
        "expression gives a string; change the expression so it gives number",
        f"{p}:9:9: duplicate rule id 'idle' (first in rule 1); give each rule its own id",
        f"{p}:10:5: rule 'idle': unknown key 'conditon'; did you mean 'condition'?",
        errors[5],
        f"{p}:14:13: rule 'third': unknown action 'recomend'; did you mean 'recommend'?",
        f"{p}:16:11: rule 'fourth': the condition gives a number, not true or false; compare "
        "it, e.g. 'x > 0', 'x is not None' or 'len(x) > 0'",
        f"{p}:18:21: unclosed '{{' in template; close each '{{' with '}}', or write '{{{{' and "
        "'}}' for literal braces",
        f"{p}:18:38: rule 'fourth': action 'route': unknown parameter 'colour'; 'route' takes: "
        "team (required), project, assignee, component, labels",
    ]
    assert errors[5].startswith(f"{p}:11:")
    assert "syntax" in errors[5]
    assert all("\n" not in error for error in errors)


def test_error_classes(write_yaml: WriteYaml) -> None:
    path = write_yaml(
        """
        facts: {cpu: number}
        rules:
          - id: a
            when: cpuu > 1
            action: nope
          - id: a
            when: cpu > 1
            action: verdict
            params: {decision: maybe}
          - id: b
            when: cpu
            typo: 1
        """
    )
    with pytest.raises(RuleFileError) as caught:
        load_rules(path)
    kinds = [type(error) for error in caught.value.errors]
    assert kinds == [
        ExpressionError,
        UnknownActionError,
        DuplicateRuleIdError,
        ActionParamsError,
        UnknownKeyError,
    ]


def test_expression_error_inside_a_template_points_at_the_placeholder(
    write_yaml: WriteYaml,
) -> None:
    path = write_yaml(
        """
        facts: {name: string}
        rules:
          - id: a
            when: name == 'x'
            action: route
            params: {team: "team-{nmae}"}
        """
    )
    (error,) = _errors(path)
    assert error.startswith(f"{path}:6:27: unknown field 'nmae'; did you mean 'name'?")


def test_type_mismatch_of_a_parameter(write_yaml: WriteYaml) -> None:
    path = write_yaml(
        """
        facts: {cost: number, name: string}
        rules:
          - id: a
            when: cost > 1
            action: recommend
            params: {type: delete, savings: name}
        """
    )
    with pytest.raises(RuleFileError) as caught:
        load_rules(path)
    (error,) = caught.value.errors
    assert isinstance(error, TypeMismatchError)
    assert str(error).startswith(f"{path}:6:37:")


def test_missing_keys_and_bad_values(write_yaml: WriteYaml) -> None:
    path = write_yaml(
        """
        mode: frist
        rules:
          - description: no id and no condition
          - id: b
            when: true
            priority: high
        """
    )
    errors = _errors(path)
    p = str(path)
    assert (
        errors[0] == f"{p}:1:7: mode is 'frist'; it must be 'all', 'first' or 'ordered'; "
        "did you mean 'first'?"
    )
    assert f"{p}:3:5: rule 1: missing required key 'id'; add 'id:'" in errors
    assert f"{p}:3:5: rule 1: missing required key 'when'; add 'when:'" in errors
    assert any(e.startswith(f"{p}:6:15: rule 'b': priority:") for e in errors)


def test_missing_rules_and_not_a_mapping(write_yaml: WriteYaml) -> None:
    assert _errors(write_yaml("kind: plain\n")) == [
        f"{write_yaml('kind: plain')}:1:1: missing required key 'rules'; add a 'rules:' list"
    ]
    path = write_yaml("- a\n- b\n", "list.yaml")
    assert _errors(path) == [
        f"{path}:1:1: a rule file must be a mapping with a 'rules:' list; start the file with "
        "'rules:'"
    ]


def test_priority_is_refused_in_ordered_mode(write_yaml: WriteYaml) -> None:
    path = write_yaml(
        """
        mode: ordered
        rules:
          - {id: a, when: true, priority: 3}
        """
    )
    (error,) = _errors(path)
    assert "priority has no effect in mode 'ordered'" in error


def test_params_without_action(write_yaml: WriteYaml) -> None:
    (error,) = _errors(write_yaml("rules:\n  - {id: a, when: true, params: {x: 1}}\n"))
    assert "params given without an action" in error


def test_var_clashing_with_a_declared_field(write_yaml: WriteYaml) -> None:
    path = write_yaml(
        """
        facts: {limit: number}
        vars: {limit: 3}
        rules: []
        """
    )
    (error,) = _errors(path)
    assert error.startswith(f"{path}:2:8: 'limit' is both a declared fact field and a var")


def test_yaml_errors_come_as_rule_file_errors(write_yaml: WriteYaml) -> None:
    path = write_yaml("rules:\n  - id: a\n    id: b\n    when: true\n")
    (error,) = _errors(path)
    assert error.startswith(f"{path}:3:5: duplicate key 'id'")


def test_unreadable_file() -> None:
    with pytest.raises(RuleFileError, match="cannot read the rule file"):
        load_rules("/nonexistent/rules.yaml")


def test_schema_errors_are_rule_schema_errors() -> None:
    with pytest.raises(RuleFileError) as caught:
        load_rules_text("rules: 3\n", "x.yaml")
    (error,) = caught.value.errors
    assert isinstance(error, RuleSchemaError)
    assert str(error) == (
        "x.yaml:1:8: 'rules' must be a list of rules; write each rule as a '- id: …' item "
        "under 'rules:'"
    )


def test_a_huge_rule_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("w") as handle:
        handle.write("rules:\n")
        handle.write("# padding\n" * 600_000)
    (error,) = _errors(path)
    assert error == (
        f"{path}: the file is 6,000,007 bytes, more than the 1,000,000 a rule file may be; "
        "split it into several files in one folder"
    )


def test_a_billion_laughs_rule_file_is_refused(write_yaml: WriteYaml) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, 10):
        previous, name = chr(96 + level), chr(97 + level)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    lines.append("rules: *j")
    (error,) = _errors(write_yaml("\n".join(lines) + "\n"))
    # 'lol' is short, so the text limit (1,000,000 characters) is met before the node limit.
    assert "expands to more than 1,000,000 characters of text" in error


def test_errors_in_multi_line_conditions_point_at_the_token(write_yaml: WriteYaml) -> None:
    path = write_yaml(
        """
        facts: {cpu: number, mem: number}
        rules:
          - id: literal
            when: |
              cpu < 10 and
              mem < memm
          - id: folded
            when: >-
              cpu < 10 and
              mem < memm
          - id: quoted
            when: "cpu < 10 and
              mem < memm"
          - id: plain
            when: cpu < 10 and
              mem < memm
          - id: end
            when: cpu <
        """
    )
    errors = _errors(path)
    p = str(path)
    assert [error.split(": ", 1)[0] for error in errors] == [
        f"{p}:6:13",
        f"{p}:10:13",
        f"{p}:13:13",
        f"{p}:16:13",
        f"{p}:18:16",
    ]
