"""Rule files: what a RuleSet adds over the bare conditions, row and columnar.

The 5 rules of issue 3 as a savings rule set, two of them with a ``recommend`` action whose
``savings`` parameter is an expression. Measured on the same facts, median of --repeats runs:

row:
  predicates        compile_predicates over the 5 conditions, nothing else (the floor)
  hand-written      the same call, then by hand, for each match, the params dict and a tuple
  RuleSet           RuleSet.evaluate_many: the same work, returning Outcome/Match objects
columnar:
  conditions        one Polars select of the 5 conditions (the floor)
  RuleSet           RuleSet.evaluate_frame: conditions, then a frame of matches with params

Every contestant's match count is checked against the predicates', so a fast wrong answer
cannot win.

Run: .venv/bin/python bench/ruleset_bench.py [--facts 100000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from reclaim.rules import load_rules_text
from reclaim.rules.expression import compile_predicates

RULES = """
kind: savings
facts: {cpu_avg: number, monthly_cost: number, state: string, age_days: integer,
        owner: string, env: string, mem_avg: number}
vars: {watch_list: [user00, user01, user02, user03, user04]}
rules:
  - id: idle
    when: cpu_avg < 10 and monthly_cost > 50
    action: recommend
    params: {type: rightsize, savings: monthly_cost * 0.7}
  - id: unattached
    when: state == 'unattached' and age_days > 7
    action: recommend
    params: {type: delete, savings: monthly_cost}
  - id: watched
    when: owner in watch_list
  - id: idle-dev
    when: env == 'dev' and mem_avg < 20 and cpu_avg < 30
  - id: new-expensive
    when: monthly_cost > 400 and age_days < 3
"""


def make_facts(count: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    owners = [f"user{i:02d}" for i in range(50)]
    return [
        {
            "cpu_avg": round(rng.uniform(0, 100), 2),
            "monthly_cost": round(rng.uniform(0, 600), 2),
            "state": rng.choice(["running", "stopped", "unattached"]),
            "age_days": rng.randint(0, 60),
            "owner": rng.choice(owners),
            "env": rng.choice(["dev", "prod", "staging"]),
            "mem_avg": round(rng.uniform(0, 100), 2),
        }
        for _ in range(count)
    ]


def timed(run: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times = []
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--facts", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    ruleset = load_rules_text(RULES, "bench.yaml")
    rules = ruleset.active_rules
    facts = make_facts(args.facts)
    frame = pl.DataFrame(facts)
    predicates = compile_predicates([rule.condition for rule in rules])
    savings = [rule.params.get("savings") for rule in rules]
    kinds = [rule.params["type"].value if "type" in rule.params else None for rule in rules]

    def floor() -> int:
        return sum(sum(predicates(fact, None)) for fact in facts)

    def hand_written() -> int:
        out = []
        for fact in facts:
            matches = []
            for index, hit in enumerate(predicates(fact, None)):
                if hit:
                    param = savings[index]
                    params = (
                        {"type": kinds[index], "savings": param.value.evaluate(fact)}
                        if param is not None
                        else {}
                    )
                    matches.append((rules[index].id, params))
            out.append(matches)
        return sum(len(matches) for matches in out)

    def ruleset_rows() -> int:
        return sum(len(outcome.matches) for outcome in ruleset.evaluate_many(facts))

    conditions = [
        rule.condition.to_polars(schema=frame.schema).fill_null(False).alias(rule.id)
        for rule in rules
    ]

    def columnar_floor() -> int:
        selected = frame.select(conditions)
        return int(sum(selected[name].sum() for name in selected.columns))

    def ruleset_frame() -> int:
        return ruleset.evaluate_frame(frame).height

    results: dict[str, tuple[float, int]] = {}
    for name, run in [
        ("row: predicates (floor)", floor),
        ("row: hand-written predicates + params", hand_written),
        ("row: RuleSet.evaluate_many", ruleset_rows),
        ("columnar: one select of the conditions (floor)", columnar_floor),
        ("columnar: RuleSet.evaluate_frame", ruleset_frame),
    ]:
        results[name] = timed(run, args.repeats)
    expected = results["row: predicates (floor)"][1]
    print(f"{args.facts:,} facts, 5 rules, {expected:,} matches, median of {args.repeats} runs")
    for name, (seconds, count) in results.items():
        assert count == expected, f"{name}: {count} matches, expected {expected}"
        print(f"  {name:50s} {args.facts / seconds / 1e6:7.2f} M facts/s")

    def ratio(slow: str, fast: str) -> float:
        return results[slow][0] / results[fast][0]

    print(
        "  RuleSet.evaluate_many / hand-written: "
        f"{ratio('row: RuleSet.evaluate_many', 'row: hand-written predicates + params'):.2f}x time;"
        f" / predicates: {ratio('row: RuleSet.evaluate_many', 'row: predicates (floor)'):.2f}x"
    )
    print(
        "  RuleSet.evaluate_frame / conditions select: "
        f"{ratio('columnar: RuleSet.evaluate_frame', 'columnar: one select of the conditions (floor)'):.2f}x time"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
