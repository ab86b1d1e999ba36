"""The built-in savings pack: complete, documented, tested, and typed against the facts."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from reclaim.errors import ConfigError
from reclaim.ingest import FIELD_TYPES, conform_facts
from reclaim.recommend.pack import builtin_pack_path, load_pack
from reclaim.rules import run_rule_tests

EXPECTED_RULES = {
    "idle-vm",
    "vm-rightsize",
    "unattached-volume",
    "old-snapshot",
    "unassociated-ip",
    "idle-load-balancer",
    "gp2-to-gp3",
    "previous-generation-instance",
    "stopped-vm-with-volumes",
    "idle-database",
    "unowned-resource",
    "bucket-without-lifecycle",
    "idle-nat-gateway",
    "graviton-candidate",
    "nonprod-schedule",
    "uncovered-steady-usage",
}


def test_pack_has_the_rules_practitioners_expect() -> None:
    pack = load_pack()
    ids = {rule.id for rule in pack.rules}
    assert ids >= EXPECTED_RULES
    assert len(ids) >= 16
    assert pack.kind == "savings"


def test_every_rule_states_its_saving_method_and_explains_itself() -> None:
    for rule in load_pack().rules:
        assert rule.action is not None
        assert rule.action.name == "recommend", rule.id
        assert {"type", "title", "savings", "method"} <= set(rule.params), rule.id
        assert len(rule.description) > 40, rule.id


def test_the_pack_tests_kept_beside_it_pass() -> None:
    report = run_rule_tests([builtin_pack_path().parent])
    assert not report.errors, report.render()
    assert report.passed, report.render()
    pack = load_pack()
    tests_text = builtin_pack_path().with_name("savings.tests.yaml").read_text()
    for rule in pack.rules:
        assert f"fired: [{rule.id}" in tests_text or f", {rule.id}]" in tests_text, rule.id


def test_pack_facts_match_the_ingest_contract() -> None:
    pack = load_pack()
    assert pack.schema is not None
    declared = pack.schema.names
    assert declared <= set(FIELD_TYPES), declared - set(FIELD_TYPES)
    for name in declared:
        spec = pack.schema.get(name)
        assert spec is not None
        assert spec.type.value == FIELD_TYPES[name], name


def test_pack_runs_columnar_over_a_conformed_facts_table() -> None:
    facts = conform_facts(
        pl.DataFrame(
            {
                "resource_id": ["vol-1", "i-1"],
                "kind": ["volume", "vm"],
                "attached": [False, True],
                "days_since_attached": [40.0, 0.0],
                "cost_30d": [9.5, 100.0],
                "in_bill": [True, True],
                "tag_count": [1, 1],
                "owner": ["a", "b"],
            }
        )
    ).collect()
    matches = load_pack().evaluate_frame(facts)
    assert matches["rule_id"].to_list() == ["unattached-volume"]


def test_thresholds_are_vars_a_user_pack_overrides(tmp_path: Path) -> None:
    text = builtin_pack_path().read_text().replace("unattached_days: 7", "unattached_days: 60")
    user = tmp_path / "mine.yaml"
    user.write_text(text)
    fact = {
        "resource_id": "vol-1",
        "kind": "volume",
        "attached": False,
        "days_since_attached": 40.0,
        "cost_30d": 9.5,
        "in_bill": True,
        "owner": "a",
        "tag_count": 1,
    }
    assert load_pack().evaluate(fact).fired == ["unattached-volume"]
    assert load_pack(user).evaluate(fact).fired == []


def test_a_pack_of_another_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text("kind: routing\nrules:\n  - id: r\n    when: true\n")
    with pytest.raises(ConfigError, match="not savings"):
        load_pack(path)
