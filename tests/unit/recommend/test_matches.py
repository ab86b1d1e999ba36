"""From the columnar evaluator's matches to recommendation rows."""

from __future__ import annotations

import json

import polars as pl
import pytest

from reclaim.errors import ConfigError
from reclaim.recommend import Scope, fingerprint, matches_from_frame, record_run
from reclaim.rules import load_rules_text

PACK = """
kind: savings
facts: {resource_id: string, account_id: string, cost_30d: number, owner: string, kind: string}
vars: {long_method: "%s"}
rules:
  - id: costly
    when: cost_30d > 10
    action: recommend
    params: {type: review, title: "Review {resource_id}", savings: cost_30d / 2,
             method: long_method, note: "'x'"}
  - id: orphan
    when: owner is None
    action: recommend
    params: {type: tag, title: "Tag {resource_id}", savings: 0, method: "'governance'",
             owner: "'finops'"}
""" % ("m" * 100)


def test_matches_carry_figures_fingerprints_and_only_their_own_params() -> None:
    pack = load_rules_text(PACK, "pack.yaml")
    facts = pl.DataFrame(
        {
            "resource_id": ["a", "b"],
            "account_id": ["1", None],
            "cost_30d": [40.0, 5.0],
            "owner": ["x" * 300, None],
            "kind": ["vm", "volume"],
        }
    )
    rule_params = {rule.id: list(rule.params) for rule in pack.rules}
    rows = matches_from_frame(facts, pack.evaluate_frame(facts), rule_params)
    by_rule = {row["rule_id"]: row for row in rows.iter_rows(named=True)}
    costly, orphan = by_rule["costly"], by_rule["orphan"]
    assert costly["fingerprint"] == fingerprint("costly", "a", "1")
    assert costly["monthly_savings"] == 20.0
    assert costly["title"] == "Review a"
    assert costly["savings_method"] == "m" * 64  # cut to the column's width
    assert costly["owner"] == "x" * 256
    assert json.loads(costly["params"]) == {
        "type": "review",
        "title": "Review a",
        "savings": 20.0,
        "method": "m" * 100,
        "note": "x",
    }
    assert orphan["fingerprint"] == fingerprint("orphan", "b", None)
    assert orphan["owner"] == "finops"  # the rule routes it to the default owner
    assert orphan["kind"] == "volume"
    assert "note" not in json.loads(orphan["params"])


def test_no_match_gives_an_empty_table() -> None:
    pack = load_rules_text(PACK, "pack.yaml")
    facts = pl.DataFrame({"resource_id": ["a"], "cost_30d": [1.0], "owner": ["x"]})
    assert matches_from_frame(facts, pack.evaluate_frame(facts)).height == 0


def test_a_run_id_too_long_is_refused_before_anything_runs() -> None:
    with pytest.raises(ConfigError, match="1 to 200 characters"):
        record_run(None, pl.DataFrame(), scope=Scope(frozenset()), run_id="r" * 201)  # type: ignore[arg-type]


def test_impossible_savings_are_stored_as_unknown_not_a_failed_run() -> None:
    pack = load_rules_text(
        "kind: savings\nfacts: {resource_id: string, cost_30d: number, n: number}\nrules:\n"
        "  - id: r\n    when: true\n    action: recommend\n"
        "    params: {type: x, savings: cost_30d / n}\n",
        "pack.yaml",
    )
    facts = pl.DataFrame(
        {"resource_id": ["a", "b", "c"], "cost_30d": [10.0, 0.0, 5.0], "n": [0.0, 0.0, 2.0]}
    )
    rows = matches_from_frame(facts, pack.evaluate_frame(facts))
    assert rows["monthly_savings"].to_list() == [0.0, 0.0, 2.5]


def test_each_rules_params_are_encoded_over_its_rows_alone_in_the_matches_order() -> None:
    # Each rule's JSON is encoded over that rule's rows only (one encoding per rule over every
    # row cost ~2.7 s of CPU at 1 M resources); the rows must come back in the matches' order,
    # interleaved rules and all, and a rule without known parameters lists them all.
    pack = load_rules_text(PACK, "pack.yaml")
    facts = pl.DataFrame(
        {
            "resource_id": [f"r{n}" for n in range(6)],
            "account_id": ["1"] * 6,
            "cost_30d": [40.0, 5.0, 30.0, 2.0, 50.0, 60.0],
            "owner": [None, "a", None, None, "b", None],
            "kind": ["vm"] * 6,
        }
    )
    matched = pack.evaluate_frame(facts).sort("row", "rule_id")
    assert matched.get_column("rule_id").cast(pl.String).to_list()[:4] == [
        "costly",
        "orphan",
        "costly",
        "orphan",
    ]
    own = {"costly": ["type", "title", "savings", "method", "note"]}
    rows = matches_from_frame(facts, matched, own).iter_rows(named=True)
    for row in rows:
        params = json.loads(row["params"])
        if row["rule_id"] == "costly":
            assert list(params) == own["costly"]
            assert params["title"] == f"Review {row['resource_id']}"
        else:
            # "orphan" is not in rule_params: every parameter of the pack, its own set.
            assert params["title"] == f"Tag {row['resource_id']}"
            assert set(params) >= {"type", "title", "savings", "method", "owner", "note"}
