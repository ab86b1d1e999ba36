"""Rule tests kept beside the rules: passing, failing with a diff, and files that do not load."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from reclaim.rules import RuleFileError, run_rule_tests
from reclaim.rules.testing import load_rule_tests

WriteYaml = Callable[..., Path]

RULES = """
kind: savings
rules:
  - id: idle
    when: cpu < 10
    action: recommend
    params: {type: rightsize, savings: cost * 0.5}
  - id: tier
    when: cost > 100
    action: set
    params: {tier: "'big'"}
"""


def test_inline_and_beside_tests_pass(write_yaml: WriteYaml, tmp_path: Path) -> None:
    write_yaml(
        RULES
        + """
tests:
  - name: idle
    fact: {cpu: 1, cost: 200}
    fired: [tier, idle]
    actions: {idle: {savings: 100}}
    context: {tier: big}
""",
        "savings.yaml",
    )
    write_yaml(
        """
        tests:
          - name: busy
            fact: {cpu: 50, cost: 20}
            fired: []
            not_fired: [idle]
        """,
        "savings.tests.yaml",
    )
    report = run_rule_tests([tmp_path])
    assert report.passed, report.render()
    assert [result.name for result in report.results] == ["idle", "busy"]


def test_failures_show_every_difference(write_yaml: WriteYaml, tmp_path: Path) -> None:
    write_yaml(RULES, "savings.yaml")
    write_yaml(
        """
        tests:
          - name: wrong
            fact: {cpu: 1, cost: 200}
            fired: [idle]
            not_fired: [tier]
            actions: {idle: {savings: 99, type: delete, nothing: 1}}
            context: {tier: small}
            verdict: deny
          - name: names an unknown rule
            fact: {}
            fired: [idel]
        """,
        "savings.tests.yaml",
    )
    report = run_rule_tests([tmp_path])
    assert not report.passed
    wrong, unknown = report.results
    assert list(wrong.differences) == [
        "fired:\n  - expected ['idle']\n  + actual   ['idle', 'tier']",
        "not_fired:\n  - expected []\n  + actual   ['tier']",
        "actions.idle.savings:\n  - expected 99\n  + actual   100.0",
        "actions.idle.type:\n  - expected 'delete'\n  + actual   'rightsize'",
        "actions.idle.nothing:\n  - expected 1\n  + actual   '(not set)'",
        "context.tier:\n  - expected 'small'\n  + actual   'big'",
        "verdict:\n  - expected 'deny'\n  + actual   null",
    ]
    assert unknown.error == "the test names rules that do not exist: idel"
    assert "FAIL" in report.render()
    assert report.summary() == "0 passed, 2 failed"


def test_a_broken_test_file_is_reported_with_its_location(
    write_yaml: WriteYaml, tmp_path: Path
) -> None:
    write_yaml(RULES, "savings.yaml")
    path = write_yaml("tests:\n  - name: x\n    fakt: {}\n", "savings.tests.yaml")
    report = run_rule_tests([tmp_path])
    assert not report.passed
    messages = [str(error) for error in report.errors]
    assert f"{path}:3:5: test 1: unknown key 'fakt'; did you mean 'fact'?" in messages


def test_test_file_naming_a_missing_rule_file(write_yaml: WriteYaml) -> None:
    path = write_yaml("rules: nothere.yaml\ntests: []\n", "x.tests.yaml")
    with pytest.raises(RuleFileError, match="does not exist"):
        load_rule_tests(path)


def test_the_shipped_examples_pass() -> None:
    import reclaim.rules.examples.invoice_actions  # noqa: F401  registers the invoice actions
    from reclaim.rules.examples import EXAMPLES_DIR

    report = run_rule_tests([EXAMPLES_DIR])
    assert report.passed, report.render()
    sources = {Path(result.source).name for result in report.results}
    assert sources == {
        "invoices.tests.yaml",
        "savings.tests.yaml",
        "routing.tests.yaml",
        "policy.tests.yaml",
    }


def test_a_test_fact_with_an_undeclared_field_fails(write_yaml: WriteYaml, tmp_path: Path) -> None:
    write_yaml(
        """
        facts: {cpu: number}
        rules:
          - {id: idle, when: cpu < 10}
        tests:
          - name: typo
            fact: {cpuu: 1}
            fired: []
        """,
        "r.yaml",
    )
    (result,) = run_rule_tests([tmp_path]).results
    assert result.error == (
        "the fact has fields the rule set does not declare in 'facts': 'cpuu' (did you mean 'cpu'?)"
    )
