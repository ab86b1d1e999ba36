"""The row and columnar evaluators give the same matches, on a generated table with nulls."""

from __future__ import annotations

import random
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reclaim.rules import RuleSet, load_rules_text

RULES = """
mode: {mode}
facts:
  cpu_avg: number
  mem_avg: number
  monthly_cost: number
  age_days: integer
  state: string
  env: string
  owner: string
  tags: {{team: string}}
vars:
  watch_list: [alice, bob]
rules:
  - id: idle
    priority: 3
    when: cpu_avg < 10 and monthly_cost > 50
    action: recommend
    params: {{type: rightsize, savings: monthly_cost * 0.7, title: "idle {{owner}}"}}
  - id: unattached
    when: state == 'unattached' and age_days > 7
    action: recommend
    params: {{type: delete, savings: monthly_cost}}
  - id: watched
    priority: 3
    when: owner in watch_list
    action: route
    params: {{team: "{{owner}}", labels: [watch, "{{state}}"]}}
  - id: dev
    when: env == 'dev' and mem_avg < 20 and cpu_avg < 30
    action: set
    params: {{cpu_avg: cpu_avg + 50}}
  - id: new-expensive
    when: monthly_cost > 400 and age_days < 3 or tags.team == 'web'
    action: verdict
    params: {{decision: warn, message: "{{coalesce(tags.team, 'none')}}"}}
  - id: after-dev
    when: cpu_avg >= 50 and not (state == 'running')
"""


def _maybe(rng: random.Random, value: Any) -> Any:
    return None if rng.random() < 0.15 else value


def _facts(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    facts = []
    for _ in range(count):
        facts.append(
            {
                "cpu_avg": _maybe(rng, round(rng.uniform(0, 100), 1)),
                "mem_avg": _maybe(rng, round(rng.uniform(0, 100), 1)),
                "monthly_cost": _maybe(rng, round(rng.uniform(0, 600), 2)),
                "age_days": _maybe(rng, rng.randint(0, 30)),
                "state": _maybe(rng, rng.choice(["running", "unattached", "stopped"])),
                "env": _maybe(rng, rng.choice(["dev", "prod"])),
                "owner": _maybe(rng, rng.choice(["alice", "bob", "carol"])),
                "tags": _maybe(rng, {"team": _maybe(rng, rng.choice(["web", "data"]))}),
            }
        )
    return facts


def _row_matches(ruleset: RuleSet, facts: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    found = []
    for index, outcome in enumerate(ruleset.evaluate_many(facts)):
        for match in outcome.matches:
            found.append((index, match.rule_id, sorted(match.params.items())))
    return found


def _columnar_matches(ruleset: RuleSet, facts: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    schema = {
        "cpu_avg": pl.Float64,
        "mem_avg": pl.Float64,
        "monthly_cost": pl.Float64,
        "age_days": pl.Int64,
        "state": pl.String,
        "env": pl.String,
        "owner": pl.String,
        "tags": pl.Struct({"team": pl.String}),
    }
    result = ruleset.evaluate_frame(pl.DataFrame(facts, schema=schema))
    found = []
    for record in result.to_dicts():
        rule = ruleset.rule(record["rule_id"])
        params = {name: record["params"][name] for name in rule.params}
        found.append((record["row"], record["rule_id"], sorted(params.items())))
    return found


def _normalize(matches: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    def value(item: Any) -> Any:
        return round(item, 9) if isinstance(item, float) else item

    return [
        (row, rule_id, [(name, value(item)) for name, item in params])
        for row, rule_id, params in matches
    ]


@pytest.mark.parametrize("mode", ["all", "first", "ordered"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_row_and_columnar_agree(mode: str, seed: int) -> None:
    text = RULES.format(mode=mode)
    if mode == "ordered":
        text = text.replace("    priority: 3\n", "")
    ruleset = load_rules_text(text)
    facts = _facts(400, seed)
    row = _normalize(_row_matches(ruleset, facts))
    columnar = _normalize(_columnar_matches(ruleset, facts))
    assert row == columnar
    assert len({match[1] for match in row}) >= 4  # the table exercises most rules


CONDITIONS = [
    "cpu_avg < 10 and monthly_cost > 50",
    "state == 'unattached' and age_days > 7",
    "owner in watch_list",
    "env == 'dev' and mem_avg < 20 and cpu_avg < 30",
    "monthly_cost > 400 and age_days < 3 or tags.team == 'web'",
    "not (cpu_avg >= 50) or state is None",
]


@settings(max_examples=15, deadline=None)
@given(
    mode=st.sampled_from(["all", "first"]),
    priorities=st.lists(st.integers(-2, 2), min_size=len(CONDITIONS), max_size=len(CONDITIONS)),
    seed=st.integers(0, 10_000),
)
def test_tie_breaks_agree_for_any_priorities(mode: str, priorities: list[int], seed: int) -> None:
    rules = "\n".join(
        f'  - id: r{index}\n    priority: {priority}\n    when: "{condition}"\n'
        f"    action: recommend\n    params:\n      type: t{index}\n"
        "      savings: coalesce(monthly_cost, 0)"
        for index, (condition, priority) in enumerate(zip(CONDITIONS, priorities, strict=True))
    )
    header = RULES.split("rules:")[0].format(mode=mode)
    ruleset = load_rules_text(f"{header}rules:\n{rules}\n")
    facts = _facts(60, seed)
    row = _normalize(_row_matches(ruleset, facts))
    assert row == _normalize(_columnar_matches(ruleset, facts))
    # The documented tie-break: priority, higher first, then file order.
    order = {rule.id: (-rule.priority, rule.index) for rule in ruleset.rules}
    for index in range(len(facts)):
        fired = [rule_id for row_index, rule_id, _ in row if row_index == index]
        assert fired == sorted(fired, key=order.__getitem__)
        if mode == "first":
            assert len(fired) <= 1
