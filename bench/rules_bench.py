"""Rules engine, expression language: our evaluators beside hand-written code and peer engines.

The same synthetic facts, the 5 rules of issue 3, all rules evaluated for every fact:

    cpu_avg < 10 and monthly_cost > 50
    state == 'unattached' and age_days > 7
    owner in watch_list
    env == 'dev' and mem_avg < 20 and cpu_avg < 30
    monthly_cost > 400 and age_days < 3

Contestants: hand-written Python lambdas, our row evaluator (compile_predicates), the rule-files
RuleSet (if present), our columnar evaluator over a Polars DataFrame, hand-written Polars
expressions, zen-engine (compiled expressions and a decision graph), simpleeval, rule-engine
and durable_rules. Slow peers run on a slice of the facts (--peer-facts); every figure is
facts per second, the median of --repeats runs. Each contestant's match counts are checked
against the lambdas', so a fast wrong answer cannot win.

Also measured: that explain costs nothing when not used (the compiled predicates of
explain-capable Expressions vs. the same code compiled from bare checked trees), the cost of
one explain, and how fast hostile expressions are rejected.

Run: .venv/bin/python bench/rules_bench.py [--facts 100000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.util
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from reclaim.rules.expression import FactSchema, compile_expression, compile_predicates
from reclaim.rules.expression.row import compile_row

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
            "id": f"r-{i}",
            "cpu_avg": rng.uniform(0, 100),
            "monthly_cost": rng.uniform(0, 1000),
            "state": rng.choice(["attached", "unattached", "running", "stopped"]),
            "age_days": rng.randint(0, 400),
            "owner": rng.choice(OWNERS),
            "env": rng.choice(["dev", "prod", "staging"]),
            "mem_avg": rng.uniform(0, 100),
        }
        for i in range(count)
    ]


def timed(run: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """(median seconds, result of the last run), with the garbage collector off as timeit does:
    the runs allocate a list per fact and a collection pass would land on whoever is running."""
    times = []
    result = None
    for _ in range(repeats):
        result = None
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            result = run()
            times.append(time.perf_counter() - start)
        finally:
            gc.enable()
    return statistics.median(times), result


def timed_together(
    runs: dict[str, Callable[[], Any]], repeats: int
) -> dict[str, tuple[float, Any]]:
    """Like timed() for several contestants, interleaved round by round, so a change in the
    machine's load (it is shared) hits every contestant alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    results: dict[str, Any] = {}
    order = list(runs)
    shuffle = random.Random(1)
    for _ in range(repeats):
        shuffle.shuffle(order)  # no contestant always runs right after the same neighbour
        for name in order:
            seconds, results[name] = timed(runs[name], 1)
            times[name].append(seconds)
    return {name: (statistics.median(times[name]), results[name]) for name in runs}


def counts_of_rows(rows: Sequence[Sequence[bool]]) -> list[int]:
    return [sum(1 for row in rows if row[i]) for i in range(len(RULES))]


class Report:
    def __init__(self) -> None:
        self.rates: dict[str, float] = {}
        self.lines: list[str] = []

    def add(self, name: str, facts: int, seconds: float, note: str = "") -> None:
        rate = facts / seconds
        self.rates[name] = rate
        line = f"{name:<44} {rate:>14,.0f} facts/s  ({facts:,} facts){note}"
        self.lines.append(line)
        print(line, flush=True)

    def ratio(self, label: str, top: str, bottom: str) -> None:
        if top in self.rates and bottom in self.rates:
            line = f"{label:<44} {self.rates[top] / self.rates[bottom]:>14.2f}x"
        else:
            line = f"{label:<44} {'n/a':>14}"
        self.lines.append(line)
        print(line, flush=True)


def bench_row(
    report: Report, facts: list[dict[str, Any]], repeats: int, expected: list[int]
) -> None:
    watch = set(WATCH_LIST)
    lambdas: list[Callable[[dict[str, Any]], bool]] = [
        lambda f: f["cpu_avg"] < 10 and f["monthly_cost"] > 50,
        lambda f: f["state"] == "unattached" and f["age_days"] > 7,
        lambda f: f["owner"] in watch,
        lambda f: f["env"] == "dev" and f["mem_avg"] < 20 and f["cpu_avg"] < 30,
        lambda f: f["monthly_cost"] > 400 and f["age_days"] < 3,
    ]
    schema = FactSchema.from_mapping(FIELDS)
    constants = {"watch_list": WATCH_LIST}
    expressions = [compile_expression(r, schema=schema, constants=constants) for r in RULES]
    predicates = compile_predicates(expressions)
    untyped = compile_predicates([compile_expression(r, constants=constants) for r in RULES])
    singles = [expression.row_predicate for expression in expressions]
    # Explain adds nothing to evaluation: the same rules compiled from bare checked trees,
    # with no Expression object (and so no explain machinery) anywhere near them.
    bare = compile_row([e.tree for e in expressions], mode="truths", sources=RULES).function
    with_nulls = [dict(f) for f in facts]
    for index in range(0, len(with_nulls), 10):
        with_nulls[index]["cpu_avg"] = None  # 10% of facts miss a value: the checked path

    results = timed_together(
        {
            "hand-written lambdas": lambda: [[rule(f) for rule in lambdas] for f in facts],
            "ours: row (compile_predicates)": lambda: [predicates(f) for f in facts],
            "ours: row, no schema (types any)": lambda: [untyped(f) for f in facts],
            "ours: row, one predicate per rule": lambda: [[p(f) for p in singles] for f in facts],
            "ours: row, compiled without explain": lambda: [bare(f) for f in facts],
            "ours: row, 10% of facts with a null": lambda: [predicates(f) for f in with_nulls],
        },
        repeats,
    )
    for name, (seconds, rows) in results.items():
        if "null" not in name:
            assert counts_of_rows(rows) == expected, name
        report.add(name, len(facts), seconds)

    explained = facts[:1000]
    start = time.perf_counter()
    for fact in explained:
        for expression in expressions:
            expression.explain(fact)
    per_explain = (time.perf_counter() - start) / (len(explained) * len(expressions))
    line = f"{'one explain() of one rule for one fact':<44} {per_explain * 1e6:>14.1f} µs"
    report.lines.append(line)
    print(line)


def timed_gc_on(runs: dict[str, Callable[[], Any]], repeats: int) -> dict[str, tuple[float, Any]]:
    """Like timed_together(), with the garbage collector left on as in a user's program: the
    API builds result objects per fact, and the collections they cause are part of its cost."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    results: dict[str, Any] = {}
    order = list(runs)
    shuffle = random.Random(2)
    for _ in range(repeats):
        shuffle.shuffle(order)
        for name in order:
            gc.collect()
            results[name] = None
            start = time.perf_counter()
            results[name] = runs[name]()
            times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(times[name]), results[name]) for name in runs}


API_RULES = "\n".join(
    f'  - id: r{i}\n    when: "{rule}"\n    action: emit\n    params:\n      type: flag\n'
    for i, rule in enumerate(RULES)
)
API_FILE = (
    "kind: plain\nmode: all\nfacts:\n"
    + "\n".join(f"  {name}: {kind}" for name, kind in FIELDS.items())
    + f"\n  id: string\nvars:\n  watch_list: {json.dumps(WATCH_LIST)}\nrules:\n{API_RULES}"
)


def hand_written_decide() -> Callable[[dict[str, Any]], list[tuple[str, dict[str, str]]]]:
    """What a user writes by hand for the same 5 rules: one function per fact returning the
    fired rules with their parameters, in rule order."""
    watch = frozenset(WATCH_LIST)

    def decide(f: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
        fired = []
        if f["cpu_avg"] < 10 and f["monthly_cost"] > 50:
            fired.append(("r0", {"type": "flag"}))
        if f["state"] == "unattached" and f["age_days"] > 7:
            fired.append(("r1", {"type": "flag"}))
        if f["owner"] in watch:
            fired.append(("r2", {"type": "flag"}))
        if f["env"] == "dev" and f["mem_avg"] < 20 and f["cpu_avg"] < 30:
            fired.append(("r3", {"type": "flag"}))
        if f["monthly_cost"] > 400 and f["age_days"] < 3:
            fired.append(("r4", {"type": "flag"}))
        return fired

    return decide


def hand_written_polars(frame: pl.DataFrame) -> pl.DataFrame:
    """The same matches as RuleSet.evaluate_frame, written by hand with Polars' lazy API: one
    filtered projection per rule, concatenated (in parallel) and ordered by fact, then rule."""
    c = pl.col
    conditions = [
        (c("cpu_avg") < 10) & (c("monthly_cost") > 50),
        (c("state") == "unattached") & (c("age_days") > 7),
        c("owner").is_in(pl.Series(WATCH_LIST).implode()),
        (c("env") == "dev") & (c("mem_avg") < 20) & (c("cpu_avg") < 30),
        (c("monthly_cost") > 400) & (c("age_days") < 3),
    ]
    facts = frame.lazy().with_row_index("row")
    parts = [
        facts.filter(condition).select(
            c("row"),
            pl.lit(f"r{index}").alias("rule_id"),
            pl.lit("emit").alias("action"),
            pl.lit(0, dtype=pl.Int64).alias("priority"),
            pl.struct(pl.lit("flag").alias("type")).alias("params"),
        )
        for index, condition in enumerate(conditions)
    ]
    return pl.concat(parts).sort("row", maintain_order=True).collect()


def zen_decision(sources: Sequence[str]) -> dict[str, Any]:
    """The 5 rules as a zen-engine decision: one expression node computing r0..r4."""
    return {
        "nodes": [
            {"id": "in", "type": "inputNode", "name": "request", "position": {"x": 0, "y": 0}},
            {
                "id": "rules",
                "type": "expressionNode",
                "name": "rules",
                "position": {"x": 1, "y": 0},
                "content": {
                    "expressions": [
                        {"id": f"e{i}", "key": f"r{i}", "value": s} for i, s in enumerate(sources)
                    ]
                },
            },
            {"id": "out", "type": "outputNode", "name": "response", "position": {"x": 2, "y": 0}},
        ],
        "edges": [
            {"id": "a", "sourceId": "in", "targetId": "rules", "type": "edge"},
            {"id": "b", "sourceId": "rules", "targetId": "out", "type": "edge"},
        ],
    }


def bench_api(
    report: Report,
    facts: list[dict[str, Any]],
    frame: pl.DataFrame,
    peer_facts: list[dict[str, Any]],
    repeats: int,
    expected: list[int],
) -> None:
    """Issue 9, item 12: the API a user calls, beside what they would write by hand, in one
    run, garbage collector on, the median of every contestant."""
    from reclaim.rules import load_rules_text

    ruleset = load_rules_text(API_FILE, "bench.yaml")
    decide = hand_written_decide()
    evaluate = ruleset.evaluate

    def fired_counts(outcomes: Sequence[Any]) -> list[int]:
        counts = [0] * len(RULES)
        for outcome in outcomes:
            for match in outcome.matches:
                counts[int(match.rule_id[1:])] += 1
        return counts

    row = timed_gc_on(
        {
            "API: hand-written function per fact": lambda: [decide(f) for f in facts],
            "API: RuleSet.evaluate_many": lambda: ruleset.evaluate_many(facts),
            "API: RuleSet.evaluate per fact": lambda: [evaluate(f) for f in facts],
        },
        repeats,
    )
    for name, (seconds, result) in row.items():
        if "hand-written" in name:
            counts = [0] * len(RULES)
            for fired in result:
                for rule_id, _ in fired:
                    counts[int(rule_id[1:])] += 1
        else:
            counts = fired_counts(result)
        assert counts == expected, (name, counts, expected)
        report.add(name, len(facts), seconds)

    # A columnar run takes milliseconds, and the shared machine's load moves in seconds: many
    # short interleaved rounds for a stable median.
    columnar = timed_gc_on(
        {
            "API: hand-written Polars (same matches frame)": lambda: hand_written_polars(frame),
            "API: RuleSet.evaluate_frame": lambda: ruleset.evaluate_frame(frame),
        },
        repeats * 12,
    )
    reference = columnar["API: hand-written Polars (same matches frame)"][1]
    for name, (seconds, result) in columnar.items():
        counts = [int((result["rule_id"] == f"r{i}").sum()) for i in range(len(RULES))]
        assert counts == expected, (name, counts, expected)
        assert result.select("row", "rule_id").equals(reference.select("row", "rule_id")), name
        report.add(name, frame.height, seconds)

    try:
        import zen
    except ImportError:
        print("zen-engine: not installed (pip install -e '.[bench]')")
        return
    watch = "[" + ", ".join(f"'{o}'" for o in WATCH_LIST) + "]"
    sources = [r.replace("watch_list", watch) for r in RULES]
    content = json.dumps(zen_decision(sources))
    engine = zen.ZenEngine({"loader": lambda key: content})
    engine.evaluate("rules", peer_facts[0])  # load and cache the decision before timing

    def zen_by_key() -> list[list[bool]]:
        out = []
        for f in peer_facts:
            result = engine.evaluate("rules", f)["result"]
            out.append([result[f"r{i}"] for i in range(len(RULES))])
        return out

    zen_runs = timed_gc_on({"API: zen-engine evaluate(key), per fact": zen_by_key}, repeats)
    seconds, rows = zen_runs["API: zen-engine evaluate(key), per fact"]
    peer_expected = counts_of_rows(rows)
    report.add("API: zen-engine evaluate(key), per fact", len(peer_facts), seconds)
    direct = [
        [
            f["cpu_avg"] < 10 and f["monthly_cost"] > 50,
            f["state"] == "unattached" and f["age_days"] > 7,
            f["owner"] in set(WATCH_LIST),
            f["env"] == "dev" and f["mem_avg"] < 20 and f["cpu_avg"] < 30,
            f["monthly_cost"] > 400 and f["age_days"] < 3,
        ]
        for f in peer_facts
    ]
    assert peer_expected == counts_of_rows(direct)


def bench_columnar(report: Report, frame: pl.DataFrame, repeats: int, expected: list[int]) -> None:
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
        compile_expression(r, schema=schema, constants={"watch_list": WATCH_LIST}) for r in RULES
    ]
    ours = [e.to_polars(schema=frame.schema).alias(f"r{i}") for i, e in enumerate(expressions)]

    def compile_and_run() -> pl.DataFrame:
        built = [e.to_polars(schema=frame.schema).alias(f"r{i}") for i, e in enumerate(expressions)]
        return frame.select(built)

    results = timed_together(
        {
            "hand-written Polars expressions": lambda: frame.select(hand),
            "ours: columnar (to_polars)": lambda: frame.select(ours),
            "ours: columnar incl. to_polars() each run": compile_and_run,
        },
        repeats,
    )
    for name, (seconds, result) in results.items():
        assert [int(result[f"r{i}"].sum()) for i in range(len(RULES))] == expected, name
        report.add(name, frame.height, seconds)


def bench_zen(
    report: Report, facts: list[dict[str, Any]], repeats: int, expected: list[int]
) -> None:
    try:
        import zen
    except ImportError:
        print("zen-engine: not installed")
        return
    watch = "[" + ", ".join(f"'{o}'" for o in WATCH_LIST) + "]"
    sources = [r.replace("watch_list", watch) for r in RULES]
    compiled = [zen.compile_expression(s) for s in sources]
    seconds, rows = timed(lambda: [[e.evaluate(f) for e in compiled] for f in facts], repeats)
    assert counts_of_rows(rows) == expected
    report.add("zen-engine: compiled expressions", len(facts), seconds)

    graph = {
        "nodes": [
            {"id": "in", "type": "inputNode", "name": "request", "position": {"x": 0, "y": 0}},
            {
                "id": "rules",
                "type": "expressionNode",
                "name": "rules",
                "position": {"x": 1, "y": 0},
                "content": {
                    "expressions": [
                        {"id": f"e{i}", "key": f"r{i}", "value": s} for i, s in enumerate(sources)
                    ]
                },
            },
            {"id": "out", "type": "outputNode", "name": "response", "position": {"x": 2, "y": 0}},
        ],
        "edges": [
            {"id": "a", "sourceId": "in", "targetId": "rules", "type": "edge"},
            {"id": "b", "sourceId": "rules", "targetId": "out", "type": "edge"},
        ],
    }
    try:
        decision = zen.ZenEngine().create_decision(json.dumps(graph))

        def run_graph() -> list[list[bool]]:
            out = []
            for f in facts:
                result = decision.evaluate(f)["result"]
                out.append([result[f"r{i}"] for i in range(len(RULES))])
            return out

        seconds, rows = timed(run_graph, repeats)
        assert counts_of_rows(rows) == expected
        report.add("zen-engine: decision graph (expression node)", len(facts), seconds)
    except Exception as exc:  # a JDM format change should not hide the other figures
        print(f"zen-engine decision graph: skipped ({exc})")


def bench_simpleeval(
    report: Report, facts: list[dict[str, Any]], repeats: int, expected: list[int]
) -> None:
    try:
        from simpleeval import EvalWithCompoundTypes
    except ImportError:
        print("simpleeval: not installed")
        return
    evaluator = EvalWithCompoundTypes()
    parsed = [evaluator.parse(r) for r in RULES]

    def run() -> list[list[bool]]:
        out = []
        for f in facts:
            evaluator.names = {**f, "watch_list": WATCH_LIST}
            out.append(
                [evaluator.eval(r, previously_parsed=p) for r, p in zip(RULES, parsed, strict=True)]
            )
        return out

    seconds, rows = timed(run, repeats)
    assert counts_of_rows(rows) == expected
    report.add("simpleeval (pre-parsed)", len(facts), seconds)


def bench_rule_engine(
    report: Report, facts: list[dict[str, Any]], repeats: int, expected: list[int]
) -> None:
    try:
        import rule_engine
    except ImportError:
        print("rule-engine: not installed")
        return
    context = rule_engine.Context(resolver=rule_engine.resolve_item)
    rules = [rule_engine.Rule(r, context=context) for r in RULES]

    def run() -> list[list[bool]]:
        out = []
        for f in facts:
            thing = {**f, "watch_list": WATCH_LIST}
            out.append([rule.matches(thing) for rule in rules])
        return out

    seconds, rows = timed(run, repeats)
    assert counts_of_rows(rows) == expected
    report.add("rule-engine", len(facts), seconds)


def bench_durable(
    report: Report, facts: list[dict[str, Any]], repeats: int, expected: list[int]
) -> None:
    try:
        from durable.lang import m, post, ruleset, when_all
    except ImportError:
        print("durable_rules: not installed")
        return
    hits = [0] * len(RULES)
    name = f"bench{random.randrange(10**9)}"

    def counter(index: int) -> Callable[[Any], None]:
        def action(c: Any) -> None:
            hits[index] += 1

        return action

    watched = m.owner == WATCH_LIST[0]
    for owner in WATCH_LIST[1:]:
        watched = watched | (m.owner == owner)
    conditions = [
        (m.cpu_avg < 10) & (m.monthly_cost > 50),
        (m.state == "unattached") & (m.age_days > 7),
        watched,
        (m.env == "dev") & (m.mem_avg < 20) & (m.cpu_avg < 30),
        (m.monthly_cost > 400) & (m.age_days < 3),
    ]
    with ruleset(name):
        for index, condition in enumerate(conditions):
            when_all(condition)(counter(index))

    def run() -> None:
        hits[:] = [0] * len(RULES)
        for f in facts:
            with contextlib.suppress(Exception):  # durable raises when no rule matches
                post(name, {key: value for key, value in f.items() if key != "id"})

    seconds, _ = timed(run, repeats)
    # durable_rules consumes an event with the first rule that matches it, so later rules see
    # fewer events than there are facts; the rate is still one post per fact.
    note = "" if hits == expected else f"  (an event is consumed by its first match: {hits})"
    report.add("durable_rules (post per fact)", len(facts), seconds, note)


def bench_compile(report: Report) -> None:
    """Load-time cost: check and compile 1,000 distinct conditions, then one predicate function."""
    schema = FactSchema.from_mapping(FIELDS)
    sources = [
        f"cpu_avg < {i} and monthly_cost > 50 and state in ['a', 'b'] or env == 'dev'"
        for i in range(1000)
    ]
    start = time.perf_counter()
    expressions = [compile_expression(source, schema=schema) for source in sources]
    checked = time.perf_counter() - start
    start = time.perf_counter()
    compile_predicates(expressions)
    combined = time.perf_counter() - start
    line = (
        f"{'compile 1,000 conditions':<44} {checked * 1e3:>11.0f} ms, then "
        f"compile_predicates of all: {combined * 1e3:.0f} ms"
    )
    report.lines.append(line)
    print(line)


def bench_hostile(report: Report) -> None:
    path = (
        Path(__file__).resolve().parent.parent
        / "tests"
        / "security"
        / "test_hostile_expressions.py"
    )
    if not path.exists():
        return
    spec = importlib.util.spec_from_file_location("hostile", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from reclaim.rules.expression import ExpressionError

    times = []
    for _, source, _ in module.HOSTILE:
        start = time.perf_counter()
        with contextlib.suppress(ExpressionError):
            compile_expression(source, schema=module.SCHEMA)
        times.append(time.perf_counter() - start)
    line = (
        f"{'hostile expressions rejected':<44} {len(times)} cases, median "
        f"{statistics.median(times) * 1e3:.2f} ms, max {max(times) * 1e3:.1f} ms"
    )
    report.lines.append(line)
    print(line)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--facts", type=int, default=100_000)
    parser.add_argument("--peer-facts", type=int, default=10_000, help="facts for slow peers")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    facts = make_facts(args.facts)
    frame = pl.DataFrame(facts)
    watch = set(WATCH_LIST)
    rows = [
        [
            f["cpu_avg"] < 10 and f["monthly_cost"] > 50,
            f["state"] == "unattached" and f["age_days"] > 7,
            f["owner"] in watch,
            f["env"] == "dev" and f["mem_avg"] < 20 and f["cpu_avg"] < 30,
            f["monthly_cost"] > 400 and f["age_days"] < 3,
        ]
        for f in facts
    ]
    expected = counts_of_rows(rows)
    peer_facts = facts[: args.peer_facts]
    peer_expected = counts_of_rows(rows[: args.peer_facts])
    print(f"Python {sys.version.split()[0]}, Polars {pl.__version__}; matches per rule: {expected}")

    report = Report()
    bench_row(report, facts, args.repeats + 2, expected)
    bench_api(report, facts, frame, peer_facts, args.repeats, expected)
    # One columnar run over 100,000 facts takes milliseconds: more repeats for a stable median.
    bench_columnar(report, frame, args.repeats * 6, expected)
    bench_zen(report, peer_facts, args.repeats, peer_expected)
    bench_simpleeval(report, peer_facts, max(1, args.repeats // 2), peer_expected)
    bench_rule_engine(report, peer_facts, max(1, args.repeats // 2), peer_expected)
    bench_durable(report, peer_facts[:5000], 1, counts_of_rows(rows[:5000]))
    bench_compile(report)
    bench_hostile(report)

    print("\nratios")
    report.ratio(
        "row / lambdas (target >= 0.9)", "ours: row (compile_predicates)", "hand-written lambdas"
    )
    report.ratio(
        "row without explain / row",
        "ours: row, compiled without explain",
        "ours: row (compile_predicates)",
    )
    report.ratio(
        "columnar / hand Polars (target >= 0.5)",
        "ours: columnar (to_polars)",
        "hand-written Polars expressions",
    )
    zen_best = max(
        (rate for name, rate in report.rates.items() if name.startswith("zen-engine")), default=None
    )
    if zen_best:
        report.rates["zen-engine (best)"] = zen_best
    report.ratio(
        "columnar / zen-engine best (target >= 100)",
        "ours: columnar (to_polars)",
        "zen-engine (best)",
    )
    report.ratio("row / zen-engine best", "ours: row (compile_predicates)", "zen-engine (best)")

    print("\nratios through the API a user calls (issue 9, item 12; GC on, medians)")
    report.ratio(
        "evaluate_many / hand-written fn (goal >= 0.9)",
        "API: RuleSet.evaluate_many",
        "API: hand-written function per fact",
    )
    report.ratio(
        "evaluate per fact / hand-written fn",
        "API: RuleSet.evaluate per fact",
        "API: hand-written function per fact",
    )
    report.ratio(
        "evaluate_frame / hand Polars (goal >= 0.8)",
        "API: RuleSet.evaluate_frame",
        "API: hand-written Polars (same matches frame)",
    )
    report.ratio(
        "evaluate_frame / zen evaluate(key) (goal >= 100)",
        "API: RuleSet.evaluate_frame",
        "API: zen-engine evaluate(key), per fact",
    )
    report.ratio(
        "evaluate_many / zen evaluate(key)",
        "API: RuleSet.evaluate_many",
        "API: zen-engine evaluate(key), per fact",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
