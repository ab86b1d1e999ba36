"""Rule files at the limits, and cold start (issue 9, items 7 and 13).

Limits: for each per-file limit of docs/rules.md, a file as close to it as the limits allow
(every other limit kept), timed to check (``load_rules_text``) and to evaluate first, row
(``RuleSet.evaluate``) and columnar (``RuleSet.evaluate_frame``). The budget is 10 s for the
three together on one core.

Cold start: ``reclaim --help`` and ``reclaim rules check`` of a one-rule file as subprocesses
(wall and CPU time: the CPU time is what a shared machine cannot inflate much); 2,000 rules
loaded and first evaluated, beside zen-engine compiling the same 2,000 expressions and
rule-engine parsing them and evaluating each once.

Run: .venv/bin/python bench/rules_limits_bench.py [--repeats 3] [--skip-limits]
[--compare before=OTHER/src]. The children run without PYTHONDONTWRITEBYTECODE, as a user's
install caches bytecode.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reclaim.rules.expression import Limits

FACT = {"cpu_avg": 3.0, "monthly_cost": 100.0, "state": "a", "env": "dev", "owner": "u1"}


def _limits() -> Limits:
    # Imported when used: the cold-start child times the import of the rules engine itself.
    from reclaim.rules.expression import DEFAULT_LIMITS

    return DEFAULT_LIMITS


def _yaml_heavy() -> str:
    # The largest list a var may hold, written out to nearly the byte limit.
    items = ", ".join(f"v{i:06d}" for i in range(_limits().max_list_len))
    return f"vars:\n  big: [{items}]\nrules:\n  - id: watched\n    when: owner in big\n"


def _nodes_heavy() -> str:
    # Expressions about as large as one may be, as many as the file's node budget allows.
    from reclaim.rules.checker import expression_cost
    from reclaim.rules.expression import compile_expression

    condition = " and ".join(f"cpu_avg > {i}" for i in range(380))
    nodes, _ = expression_cost(compile_expression(condition).tree)
    count = _limits().max_file_nodes // nodes
    return "rules:\n" + "".join(f"  - id: r{i}\n    when: {condition}\n" for i in range(count))


def _rules_heavy() -> str:
    rules = "".join(
        f"  - id: r{i}\n    when: cpu_avg < {i} and env == 'dev'\n"
        for i in range(_limits().max_rules)
    )
    return "facts: {cpu_avg: number, env: string}\nrules:\n" + rules


def _constants_heavy() -> str:
    items = ", ".join(f"u{i}" for i in range(_limits().max_list_len))
    uses = _limits().max_file_constant_items // _limits().max_list_len
    rules = "".join(f"  - id: r{i}\n    when: owner in big\n" for i in range(uses))
    return f"vars:\n  big: [{items}]\nrules:\n{rules}"


def bench_limits() -> None:
    import polars as pl

    from reclaim.rules import load_rules_text
    from reclaim.rules.source import DEFAULT_YAML_LIMITS

    frame = pl.DataFrame([FACT])
    cases: list[tuple[str, Callable[[], str]]] = [
        (f"{DEFAULT_YAML_LIMITS.max_bytes:,} bytes of YAML", _yaml_heavy),
        (f"{_limits().max_file_nodes:,} syntax nodes", _nodes_heavy),
        (f"{_limits().max_rules:,} rules", _rules_heavy),
        (f"{_limits().max_file_constant_items:,} constant items", _constants_heavy),
    ]
    print(
        f"{'file at the limit':<32} {'bytes':>10} {'check':>8} {'row':>8} {'frame':>8} {'total':>8}"
    )
    for name, build in cases:
        text = build()
        start = time.process_time()
        ruleset = load_rules_text(text, "limit.yaml")
        checked = time.process_time()
        ruleset.evaluate(FACT)
        row = time.process_time()
        ruleset.evaluate_frame(frame)
        done = time.process_time()
        print(
            f"{name:<32} {len(text):>10,} {checked - start:>7.2f}s {row - checked:>7.2f}s "
            f"{done - row:>7.2f}s {done - start:>7.2f}s  (CPU time, budget 10 s)",
            flush=True,
        )


def _run_cli(args: Sequence[str], env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "reclaim", *args], capture_output=True, check=False, env=env
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _cold_child(path: str) -> None:
    """In a fresh interpreter: import the rules engine, load the file, evaluate one complete
    fact, then one with a null field (the first null compiles the checked fallback). CPU
    times as JSON on stdout. Only the public API, so older code can be measured too."""
    import json

    start = time.process_time()
    from reclaim.rules import load_rules_text

    imported = time.process_time()
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    read = time.process_time()
    ruleset = load_rules_text(text, "2000.yaml")
    loaded = time.process_time()
    ruleset.evaluate(FACT)
    first = time.process_time()
    ruleset.evaluate({**FACT, "cpu_avg": None})
    null = time.process_time()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "import": imported - start,
                "load": loaded - read,
                "first": first - loaded,
                "null": null - first,
                "process": usage.ru_utime + usage.ru_stime,
                "peak_kib": usage.ru_maxrss,
            }
        )
    )


def _code_env(src: str | None) -> dict[str, str]:
    # A user's install caches bytecode; without the cache every start compiles reclaim's
    # own modules again (~60 ms of a `rules check`), which is not what a user waits for.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    if src is not None:
        env["PYTHONPATH"] = src
    return env


def bench_cold_start(repeats: int, codes: Sequence[tuple[str, str | None]]) -> None:
    """Every measure in fresh interpreters: ``repeats`` rounds, each running every code
    (a label, and a ``src`` folder or None for the one installed) one after the other, after
    one round not counted (it writes the bytecode caches)."""
    import json

    sources = [
        f"cpu_avg < {i} and monthly_cost > 50 and state in ['a', 'b'] or env == 'dev'"
        for i in range(2_000)
    ]
    text = "facts: {cpu_avg: number, monthly_cost: number, state: string, env: string}\n"
    text += "rules:\n" + "".join(f'  - id: r{i}\n    when: "{s}"\n' for i, s in enumerate(sources))
    results: dict[str, dict[str, list[float]]] = {label: {} for label, _ in codes}
    loads: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        one = Path(folder) / "one.yaml"
        one.write_text("rules:\n  - id: idle\n    when: cpu_avg < 10\n", encoding="utf-8")
        big = Path(folder) / "2000.yaml"
        big.write_text(text, encoding="utf-8")
        for round_number in range(repeats + 1):
            counted = round_number > 0
            for label, src in codes:
                env = _code_env(src)
                found = results[label] if counted else {}
                loads.append(os.getloadavg()[0])
                for name, args in (("help", ["--help"]), ("check", ["rules", "check", str(one)])):
                    wall, cpu = _run_cli(args, env)
                    found.setdefault(name, []).append(cpu)
                    found.setdefault(f"{name}_wall", []).append(wall)
                child = subprocess.run(
                    [sys.executable, __file__, "--cold-child", str(big)],
                    capture_output=True,
                    text=True,
                    check=True,
                    env=env,
                )
                for name, value in json.loads(child.stdout.strip().splitlines()[-1]).items():
                    found.setdefault(name, []).append(value)
    median = statistics.median
    print(
        f"Cold start in fresh interpreters, medians of {repeats} rounds "
        f"(load average {min(loads):.1f}-{max(loads):.1f}):"
    )
    for label, found in results.items():
        load, first = median(found["load"]), median(found["first"])
        for name, what in (("help", "reclaim --help"), ("check", "reclaim rules check (one rule)")):
            print(
                f"  [{label}] {what}: wall {median(found[f'{name}_wall']):.3f} s median, "
                f"{min(found[f'{name}_wall']):.3f} s min; CPU {median(found[name]):.3f} s "
                f"median, {min(found[name]):.3f} s min (goal < 0.3 s wall)"
            )
        print(
            f"  [{label}] 2,000 rules: load {load * 1e3:.0f} ms + first evaluate "
            f"{first * 1e3:.0f} ms = {(load + first) * 1e3:.0f} ms (goal < 500 ms); "
            f"then a fact with a null {median(found['null']) * 1e3:.0f} ms; import "
            f"{median(found['import']) * 1e3:.0f} ms; whole process "
            f"{median(found['process']) * 1e3:.0f} ms, peak "
            f"{median(found['peak_kib']) / 1024:.0f} MiB",
            flush=True,
        )
    ours = median(results[codes[0][0]]["load"]) + median(results[codes[0][0]]["first"])
    _bench_peers(sources, repeats, ours)


def _bench_peers(sources: list[str], repeats: int, ours: float) -> None:
    """The peers of the bench extra on the same 2,000 conditions, beside our load + first
    evaluation (``ours``, CPU seconds): zen-engine compiles them (it reads no rule file);
    rule-engine parses them and evaluates each once on the fact."""
    fact = {"cpu_avg": 3.0, "monthly_cost": 100.0, "state": "a", "env": "dev"}
    try:
        import zen
    except ImportError:
        print("zen-engine: not installed (pip install -e '.[bench]')")
    else:
        times = []
        for _ in range(repeats):
            start = time.process_time()
            compiled: list[Any] = [zen.compile_expression(source) for source in sources]
            times.append(time.process_time() - start)
        assert len(compiled) == len(sources)
        peer = statistics.median(times)
        print(
            f"{'zen-engine: compile the same 2,000':<44} {peer * 1e3:6.0f} ms CPU "
            f"(ours is {ours / peer:.0f}x its time)",
            flush=True,
        )
    try:
        import rule_engine
    except ImportError:
        print("rule-engine: not installed (pip install -e '.[bench]')")
        return
    # rule-engine reads these conditions as written (same operators and list literals).
    times = []
    for _ in range(repeats):
        start = time.process_time()
        rules = [rule_engine.Rule(source) for source in sources]
        hits = sum(rule.matches(fact) for rule in rules)
        times.append(time.process_time() - start)
    assert hits == len(rules)  # env == 'dev' makes every condition true
    peer = statistics.median(times)
    print(
        f"{'rule-engine: parse 2,000, evaluate each once':<44} {peer * 1e3:6.0f} ms CPU "
        f"(ours is {ours / peer:.2f}x its time)",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-limits", action="store_true")
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="LABEL=SRC",
        help="also measure the cold start of the code in folder SRC (e.g. an older checkout's "
        "src), interleaved with this one",
    )
    parser.add_argument("--cold-child", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cold_child:
        _cold_child(args.cold_child)
        return 0
    print(f"Python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f}")
    codes: list[tuple[str, str | None]] = [("this", None)]
    for item in args.compare:
        label, _, src = item.partition("=")
        codes.append((label, src))
    bench_cold_start(args.repeats, codes)
    if not args.skip_limits:
        bench_limits()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
