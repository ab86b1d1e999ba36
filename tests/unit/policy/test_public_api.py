"""The public names of reclaim.policy are frozen: changing them is a deliberate act."""

from __future__ import annotations

import reclaim.policy

PUBLIC = [
    "FACT_FIELDS",
    "PLAN_ADDRESS",
    "POLICY_ACTIONS",
    "REDACTED",
    "Finding",
    "Plan",
    "PlanError",
    "PolicyException",
    "PolicySet",
    "PriceTable",
    "Report",
    "ResourceChange",
    "build_facts",
    "builtin_pack_path",
    "check_plan",
    "find_policy_files",
    "load_plan",
    "load_policies",
    "load_prices",
    "parse_plan",
]


def test_public_names_are_frozen() -> None:
    assert sorted(reclaim.policy.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert hasattr(reclaim.policy, name)


def test_the_pack_declares_every_fact_field() -> None:
    from reclaim.policy import builtin_pack_path, load_policies

    (pack,) = load_policies([builtin_pack_path()])
    assert pack.ruleset.schema is not None
    assert sorted(reclaim.policy.FACT_FIELDS) == sorted(
        name for name in reclaim.policy.FACT_FIELDS if name in pack.ruleset.schema
    )


def test_the_finding_action_example_runs() -> None:
    from reclaim.rules import load_rules_text

    spec = reclaim.policy.POLICY_ACTIONS["finding"]
    assert spec.example is not None
    ruleset = load_rules_text(spec.example, "example.yaml", actions=reclaim.policy.POLICY_ACTIONS)
    report = ruleset.run_tests()
    assert report.passed, report.render()
    assert len(report.results) == 1
