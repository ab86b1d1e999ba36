"""Differential fuzzer: every evaluator of the rules engine must give the same answer.

Expressions: the row evaluator (``evaluate``, ``matches``), the columnar one (``to_polars``,
``to_polars_predicate``) and explain, on tables that hold the awkward values of issue 9 (0.1,
2.675, NaN, ±inf, Unicode text for ``\\d \\w \\s \\b``, all-null and absent columns, numbers and
datetimes written as text), both with a declared schema and without one (every field ``any``,
its type taken from the frame).

Rule sets: ``evaluate`` per fact, ``evaluate_many``, ``evaluate_frame`` and ``explain`` in the
modes ``all``, ``first`` and ``ordered`` (with ``set`` actions that later rules read) must fire
the same rules with the same parameters.

Sizes: ``RECLAIM_FUZZ_EXPRESSIONS`` and ``RECLAIM_FUZZ_RULESETS`` (examples; small by default so
``make test`` runs a smoke pass). ``make fuzz`` runs 10,000 and 1,000 at random seeds.
Hypothesis shrinks each disagreement to a minimal expression and table and prints it with the
``@reproduce_failure`` blob; keep the shrunk case as a plain test in
tests/unit/rules/expression/test_agreement_cases.py once it is fixed.

Known, documented differences are not generated: integers beyond 2**53 mixed with floats (see
docs/expressions.md, "Where the evaluators differ"); they have their own tests there.
"""

from __future__ import annotations

import json
import math
import os
from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reclaim.errors import ReclaimError
from reclaim.rules import load_rules_text
from reclaim.rules.expression import ExpressionError, FactSchema, compile_expression

EXPRESSIONS = int(os.environ.get("RECLAIM_FUZZ_EXPRESSIONS", "60"))
RULESETS = int(os.environ.get("RECLAIM_FUZZ_RULESETS", "15"))
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)

FIELDS: dict[str, Any] = {
    "a": "integer",
    "b": "integer",
    "x": "number",
    "y": "number",
    "s": "string",
    "t": "string",
    "flag": "boolean",
    "l": "list",
    "m": {"k": "integer", "name": "string"},
    "d": "datetime",
    "n": "number",
    "z": "string",
    "sn": "string",
    "ds": "string",
}
SCHEMA = FactSchema.from_mapping(FIELDS)
FRAME_SCHEMA: dict[str, Any] = {
    "a": pl.Int64,
    "b": pl.Int64,
    "x": pl.Float64,
    "y": pl.Float64,
    "s": pl.String,
    "t": pl.String,
    "flag": pl.Boolean,
    "l": pl.List(pl.Int64),
    "m": pl.Struct({"k": pl.Int64, "name": pl.String}),
    "d": pl.Datetime("us"),
    "n": pl.Null,  # null in every row; "z" is absent from the table
    "sn": pl.String,
    "ds": pl.String,
}


def sized(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


ints = st.integers(-5, 5)
floats = st.sampled_from(
    [-2.5, -1.0, -0.5, 0.0, -0.0, 0.1, 0.5, 1.0, 2.675, 3.25, math.nan, math.inf, -math.inf]
)
texts = st.sampled_from(["", "a", "ab", "B", "abc", "é", "٣", "a b", "a\u00a0b", "_1", "ǅ"])
number_texts = st.sampled_from(["5", "-2.5", "1e3", ".5", "abc", "", " 5", "nan"])
datetime_texts = st.sampled_from(
    ["2024-01-02", "2024-01-02T03:04:05Z", "2024-01-02 03:04+02:00", "2024-02-30", "x"]
)
REGEXES = [r"^\w+$", r"\d", r"\s", r"a\b", r"\B", r"[^\W\d]", r"(?i)^[a-z]+$", r"\S\D", "^a+b?$"]


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


@st.composite
def facts(draw: st.DrawFn) -> dict[str, Any]:
    fact: dict[str, Any] = {
        "a": draw(maybe(ints)),
        "b": draw(maybe(ints)),
        "x": draw(maybe(floats)),
        "y": draw(maybe(floats)),
        "s": draw(maybe(texts)),
        "t": draw(maybe(texts)),
        "flag": draw(maybe(st.booleans())),
        "l": draw(maybe(st.lists(maybe(ints), max_size=3))),
        "m": draw(maybe(st.fixed_dictionaries({"k": maybe(ints), "name": maybe(texts)}))),
        "d": draw(maybe(st.datetimes(datetime(2024, 1, 1), datetime(2024, 12, 31)))),
        "sn": draw(maybe(number_texts)),
        "ds": draw(maybe(datetime_texts)),
    }
    for name in draw(st.lists(st.sampled_from(list(fact)), max_size=2)):
        fact.pop(name, None)
    return fact


def num(depth: int) -> st.SearchStrategy[str]:
    leaf = st.one_of(
        st.sampled_from(
            ["a", "b", "x", "y", "n", "m.k", "len(s)", "len(l)", "len(z)", "l[-1]", "number(sn)"]
        ),
        ints.map(str),
        floats.filter(math.isfinite).map(repr),
        st.just("days_since(d)"),
        st.just("days_since(datetime(ds))"),
    )
    if depth <= 0:
        return leaf
    sub, c = num(depth - 1), cond(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(sub, st.sampled_from(["+", "-", "*", "/", "//", "%"]), sub).map(
            lambda p: f"({p[0]} {p[1]} {p[2]})"
        ),
        sub.map(lambda e: f"-({e})"),
        sub.map(lambda e: f"abs({e})"),
        st.tuples(sub, st.sampled_from(["", ", 1", ", 2"])).map(lambda p: f"round({p[0]}{p[1]})"),
        sub.map(lambda e: f"({e}) ** 2"),
        st.tuples(sub, sub).map(lambda p: f"min({p[0]}, {p[1]})"),
        st.tuples(sub, sub).map(lambda p: f"max({p[0]}, {p[1]}, 0)"),
        st.tuples(sub, sub).map(lambda p: f"coalesce({p[0]}, {p[1]})"),
        st.tuples(sub, c, sub).map(lambda p: f"({p[0]} if {p[1]} else {p[2]})"),
        c.map(lambda e: f"number({e})"),
    )


def text(depth: int) -> st.SearchStrategy[str]:
    leaf = st.one_of(st.sampled_from(["s", "t", "z", "m.name", "sn"]), texts.map(repr))
    if depth <= 0:
        return leaf
    sub = text(depth - 1)
    return st.one_of(
        leaf,
        sub.map(lambda e: f"lower({e})"),
        sub.map(lambda e: f"upper({e})"),
        st.tuples(sub, sub).map(lambda p: f"({p[0]} + {p[1]})"),
        sub.map(lambda e: f"coalesce({e}, 'z')"),
        st.tuples(sub, cond(depth - 1), sub).map(lambda p: f"({p[0]} if {p[1]} else {p[2]})"),
    )


def cond(depth: int, *, bare: bool = True) -> st.SearchStrategy[str]:
    """A condition; with ``bare=False`` one typed boolean (or any), never a bare number or
    text: ``==`` and the branches of ``if``/``else`` need operands of one type, and the
    checker rightly refuses ``true == number(flag)`` (found by make fuzz, as a fuzzer bug)
    and ``null == c`` ("write c is None")."""
    leaves = [
        "flag",
        "true",
        "null",
        "(not a)",
        "(s and true)",
        "(l or flag)",
        "(x or false)",
        "(n or z)",
        "(x is None)",
        "(m.k is not null)",
        "(d < now())",
        "any(l)",
        "all(l)",
        "(datetime(ds) is None)",
    ]
    leaf = st.sampled_from(leaves if bare else [item for item in leaves if item != "null"])
    if depth <= 0:
        return leaf
    n, s, c = num(depth - 1), text(depth - 1), cond(depth - 1)
    typed = cond(depth - 1, bare=False)
    ops = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
    forms = [
        leaf,
        st.tuples(n, ops, n).map(lambda p: f"({p[0]} {p[1]} {p[2]})"),
        st.tuples(s, ops, s).map(lambda p: f"({p[0]} {p[1]} {p[2]})"),
        st.tuples(n, n, n).map(lambda p: f"({p[0]} < {p[1]} <= {p[2]})"),
        n.map(lambda e: f"({e} in [1, 2.5, None])"),
        s.map(lambda e: f"({e} not in ['a', 'é'])"),
        n.map(lambda e: f"({e} in l)"),
        st.tuples(s, s).map(lambda p: f"({p[0]} in {p[1]})"),
        c.map(lambda e: f"(not {e})"),
        st.tuples(c, c).map(lambda p: f"({p[0]} and {p[1]})"),
        st.tuples(c, c, c).map(lambda p: f"({p[0]} or {p[1]} or {p[2]})"),
        st.tuples(typed, typed).map(lambda p: f"({p[0]} == {p[1]})"),
        st.tuples(typed, c, typed).map(lambda p: f"({p[0]} if {p[1]} else {p[2]})"),
        st.tuples(n, c).map(lambda p: f"({p[0]} and {p[1]})"),
        st.tuples(s, s).map(lambda p: f"startswith({p[0]}, {p[1]})"),
        st.tuples(s, s).map(lambda p: f"contains({p[0]}, {p[1]})"),
        st.tuples(s, st.sampled_from(REGEXES)).map(lambda p: f"matches({p[0]}, r'{p[1]}')"),
        st.tuples(n, c).map(lambda p: f"any([{p[0]}, {p[1]}])"),
        st.tuples(n, c).map(lambda p: f"all([{p[0]}, {p[1]}, 1])"),
    ]
    # A bare value is a condition by its truthiness.
    return st.one_of(*forms, n, s) if bare else st.one_of(*forms)


def same(left: Any, right: Any) -> bool:
    if left is None or right is None:
        return left is None and right is None
    if isinstance(left, float) or isinstance(right, float):
        if math.isnan(left) or math.isnan(right):
            return math.isnan(left) and math.isnan(right)
        return left == right or math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(left, datetime) and isinstance(right, datetime):
        return left.replace(tzinfo=left.tzinfo or UTC) == right.replace(tzinfo=right.tzinfo or UTC)
    return bool(left == right) and isinstance(left, bool) is isinstance(right, bool)


def _row_values(expression: Any, rows: list[dict[str, Any]]) -> list[Any] | ReclaimError:
    try:
        return [expression.evaluate(fact, now=NOW) for fact in rows]
    except ReclaimError as exc:
        return exc


def _columns(expression: Any, frame: pl.DataFrame) -> tuple[list[Any], list[Any]] | Exception:
    try:
        values = frame.with_columns(
            expression.to_polars(now=NOW, schema=frame.schema).alias("__v")
        ).get_column("__v")
        truths = frame.with_columns(
            expression.to_polars_predicate(now=NOW, schema=frame.schema).alias("__t")
        ).get_column("__t")
    except (ReclaimError, pl.exceptions.PolarsError) as exc:
        return exc
    return values.to_list(), truths.to_list()


def check_expression(source: str, rows: list[dict[str, Any]], schema: FactSchema | None) -> None:
    expression = compile_expression(source, schema=schema)
    frame = pl.DataFrame(rows, schema=FRAME_SCHEMA)
    row = _row_values(expression, rows)
    columns = _columns(expression, frame)
    if isinstance(row, ReclaimError) or isinstance(columns, Exception):
        # Both refuse (a value the expression cannot take): the same answer, an error.
        assert isinstance(row, ReclaimError), (source, "only columnar refused", columns)
        assert isinstance(columns, Exception), (source, "only row refused", row)
        return
    values, truths = columns
    for index, fact in enumerate(rows):
        explained = expression.explain(fact, now=NOW).value
        assert same(row[index], values[index]), ("row/columnar", source, fact, row, values)
        assert same(row[index], explained), ("row/explain", source, fact, row[index], explained)
        matched = expression.matches(fact, now=NOW)
        assert matched is (truths[index] is True), ("predicate", source, fact, matched, truths)


@pytest.mark.timeout(0)
@sized(EXPRESSIONS)
@given(
    source=st.one_of(cond(3), num(3), text(2)),
    rows=st.lists(facts(), min_size=1, max_size=10),
    declared=st.booleans(),
)
def test_expressions_agree(source: str, rows: list[dict[str, Any]], declared: bool) -> None:
    check_expression(source, rows, SCHEMA if declared else None)


# --- rule sets in every mode ---


@st.composite
def rule_sets(draw: st.DrawFn) -> dict[str, Any]:
    mode = draw(st.sampled_from(["all", "first", "ordered"]))
    declared = draw(st.booleans())
    rules: list[dict[str, Any]] = []
    for index in range(draw(st.integers(1, 5))):
        when = draw(cond(2))
        try:
            typed = compile_expression(when, schema=SCHEMA if declared else None).result_type
        except ExpressionError:  # e.g. if/else branches typed apart once the schema is known
            when, typed = "flag", "boolean"
        if typed not in ("boolean", "any"):
            # A rule file refuses a condition typed number or text ("compare it"); `and true`
            # keeps its truthiness. A bare field of type any stays bare (the user's format).
            when = f"({when}) and true"
        rule: dict[str, Any] = {"id": f"r{index}", "when": when}
        if mode != "ordered":  # ordered runs in file order and refuses priorities
            rule["priority"] = draw(st.integers(0, 2))
        kind = draw(st.sampled_from(["none", "params", "set"]))
        if kind == "params":
            rule["action"] = "emit"
            rule["params"] = {"type": "flag", "savings": draw(num(1)), "title": "id {s}"}
        elif kind == "set":
            rule["action"] = "set"
            rule["params"] = {"x": draw(num(1))}
        rules.append(rule)
    document: dict[str, Any] = {"mode": mode, "rules": rules}
    if declared:
        document["facts"] = FIELDS
    return document


def _params(params: Any) -> dict[str, Any]:
    return {key: value for key, value in dict(params or {}).items() if value is not None}


def _same_params(left: dict[str, Any], right: dict[str, Any]) -> bool:
    return left.keys() == right.keys() and all(same(left[k], right[k]) for k in left)


@pytest.mark.timeout(0)
@sized(RULESETS)
@given(document=rule_sets(), rows=st.lists(facts(), min_size=1, max_size=8))
def test_rule_sets_agree(document: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    ruleset = load_rules_text(json.dumps(document), "fuzz.yaml")
    frame = pl.DataFrame(rows, schema=FRAME_SCHEMA)
    try:
        one_by_one = [ruleset.evaluate(fact, now=NOW, run_actions=False) for fact in rows]
    except ReclaimError:
        # A value the rules cannot take: the columnar evaluator must refuse the table too.
        with pytest.raises(ReclaimError):
            ruleset.evaluate_frame(frame, now=NOW)
        return
    many = ruleset.evaluate_many(rows, now=NOW, run_actions=False)
    matches = ruleset.evaluate_frame(frame, now=NOW).to_dicts()
    by_frame: list[list[tuple[str, dict[str, Any]]]] = [[] for _ in rows]
    for match in matches:
        by_frame[match["row"]].append((match["rule_id"], _params(match.get("params"))))
    for index, fact in enumerate(rows):
        fired = [(m.rule_id, _params(m.params)) for m in one_by_one[index].matches]
        assert [rule for rule, _ in fired] == many[index].fired, ("evaluate_many", document, fact)
        assert [rule for rule, _ in fired] == [rule for rule, _ in by_frame[index]], (
            "evaluate_frame",
            document,
            fact,
            fired,
            by_frame[index],
        )
        for (_, row_params), (_, frame_params) in zip(fired, by_frame[index], strict=True):
            assert _same_params(row_params, frame_params), (document, fact, fired, by_frame)
        explained = ruleset.explain(fact, now=NOW).fired
        assert explained == [rule for rule, _ in fired], ("explain", document, fact, explained)
