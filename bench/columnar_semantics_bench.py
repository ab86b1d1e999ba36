"""What the columnar evaluator's exact semantics cost: our conditions beside hand-written Polars.

The five conditions of bench/rules_bench.py over generated facts, computed with
``frame.select``: hand-written Polars, ``Expression.to_polars`` and
``Expression.to_polars_predicate`` (which carry the NaN and truthiness rules of the language).
Median of ``--repeats`` runs, all three interleaved.

Run: .venv/bin/python bench/columnar_semantics_bench.py [--facts 1000000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from reclaim.rules.expression import FactSchema, compile_expression

# The conditions and facts of bench/rules_bench.py, copied so the two scripts evolve apart.
RULES = [
    "cpu_avg < 10 and monthly_cost > 50",
    "state == 'unattached' and age_days > 7",
    "owner in watch_list",
    "env == 'dev' and mem_avg < 20 and cpu_avg < 30",
    "monthly_cost > 400 and age_days < 3",
]
OWNERS = [f"user{i:02d}" for i in range(50)]
WATCH_LIST = OWNERS[:10]
FIELDS = {
    "cpu_avg": "number",
    "monthly_cost": "number",
    "state": "string",
    "age_days": "integer",
    "owner": "string",
    "env": "string",
    "mem_avg": "number",
}


def make_facts(count: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "cpu_avg": rng.uniform(0, 100),
            "monthly_cost": rng.uniform(0, 1000),
            "state": rng.choice(["attached", "unattached", "running", "stopped"]),
            "age_days": rng.randint(0, 400),
            "owner": rng.choice(OWNERS),
            "env": rng.choice(["dev", "prod", "staging"]),
            "mem_avg": rng.uniform(0, 100),
        }
        for _ in range(count)
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--facts", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    frame = pl.DataFrame(make_facts(args.facts))
    c = pl.col
    hand = [
        ((c("cpu_avg") < 10) & (c("monthly_cost") > 50)).alias("r0"),
        ((c("state") == "unattached") & (c("age_days") > 7)).alias("r1"),
        c("owner").is_in(pl.Series(WATCH_LIST).implode()).alias("r2"),
        ((c("env") == "dev") & (c("mem_avg") < 20) & (c("cpu_avg") < 30)).alias("r3"),
        ((c("monthly_cost") > 400) & (c("age_days") < 3)).alias("r4"),
    ]
    schema = FactSchema.from_mapping(FIELDS)
    expressions = [
        compile_expression(rule, schema=schema, constants={"watch_list": WATCH_LIST})
        for rule in RULES
    ]
    values = [e.to_polars(schema=frame.schema).alias(f"r{i}") for i, e in enumerate(expressions)]
    truths = [
        e.to_polars_predicate(schema=frame.schema).alias(f"r{i}") for i, e in enumerate(expressions)
    ]
    runs: dict[str, Callable[[], Any]] = {
        "hand-written Polars": lambda: frame.select(hand),
        "to_polars": lambda: frame.select(values),
        "to_polars_predicate": lambda: frame.select(truths),
    }
    expected = frame.select(hand).sum().row(0)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            result = run()
            times[name].append(time.perf_counter() - start)
            assert result.sum().row(0) == expected, name
    base = statistics.median(times["hand-written Polars"])
    print(f"{args.facts:,} facts, median of {args.repeats}, load average {os.getloadavg()[0]:.1f}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"  {name:<22} {median * 1e3:8.1f} ms   {base / median:5.2f}x hand-written")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
