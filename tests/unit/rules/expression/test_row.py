"""The row evaluator's generated code: literals stay values, no builtins, both paths agree."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reclaim.rules.expression import (
    Expression,
    FactSchema,
    compile_expression,
    compile_predicates,
)
from reclaim.rules.expression.row import MASK_GROUP, RowProgram, compile_row

SCHEMA = FactSchema.from_mapping({"cpu": "number", "state": "string", "n": "integer"})


def test_string_literals_are_values_not_code() -> None:
    hostile = "x'); __import__('os').system('id'); ('"
    expression = compile_expression(f"state == {hostile!r}", schema=SCHEMA)
    assert expression.matches({"state": hostile})
    assert not expression.matches({"state": "x"})
    program = compile_row([expression.tree], mode="truth", sources=[expression.source])
    assert program.function.__globals__["__builtins__"] == {}
    assert all(
        name.startswith("_") or name.endswith("Error") for name in program.function.__globals__
    )
    # The literal appears only as a repr'd constant inside our own generated code.
    assert repr(hostile) in program.python_source


def test_optimistic_path_falls_back_to_the_checked_one_on_nulls() -> None:
    expression = compile_expression("cpu < 10 or n > 3", schema=SCHEMA)
    program = compile_row([expression.tree], mode="truth", sources=[expression.source])
    assert "except (KeyError, TypeError)" in program.python_source
    assert expression.matches({"cpu": None, "n": 4})
    assert not expression.matches({"cpu": None, "n": None})
    assert expression.matches({"cpu": 1.0})  # missing n: the KeyError path


def test_checked_code_is_compiled_when_a_fact_first_needs_it() -> None:
    # A large rule set's first evaluation compiles the optimistic code only (issue 9, item 13).
    expression = compile_expression("cpu < 10 or n > 3", schema=SCHEMA)
    program = compile_row([expression.tree], mode="mask", sources=[expression.source])
    namespace = program.function.__globals__
    before = namespace["_checked"]
    assert program.function({"cpu": 1.0, "n": 0}) == 1
    assert program.function({"cpu": 11.0, "n": 0}) == 0
    assert namespace["_checked"] is before  # no fact needed it yet
    assert program.function({"cpu": None, "n": 4}) == 1
    compiled = namespace["_checked"]
    assert compiled is not before
    assert program.function({"n": 2}) == 0  # missing cpu: through the compiled fallback
    assert namespace["_checked"] is compiled
    assert "def _checked(fact, now=None)" in program.python_source


def test_missing_fields_and_non_dict_mappings() -> None:
    from types import MappingProxyType

    evaluate = compile_predicates([compile_expression("cpu < 10", schema=SCHEMA)])
    assert evaluate(MappingProxyType({"cpu": 1.0})) == [True]
    assert evaluate({}) == [False]


def test_no_eval_or_exec_in_the_package() -> None:
    # Read the syntax, not the text: Polars' own `.list.eval(...)` is a method, not the builtin.
    import ast

    package = Path(__file__).parents[4] / "src" / "reclaim" / "rules" / "expression"
    for module in package.glob("*.py"):
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                assert node.id not in {"eval", "exec", "__import__"}, (module, node.lineno)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                assert not (node.value.id == "builtins" and node.attr in {"eval", "exec"}), (
                    module,
                    node.lineno,
                )


def _large_mask() -> tuple[list[Expression], RowProgram]:
    schema = FactSchema.from_mapping({"cpu": "number", "n": "integer", "at": "datetime"})
    sources = [
        f"n > {i}"
        if i % 3 == 0
        else f"cpu < {i}"
        if i % 3 == 1
        else f"at is not None and days_since(at) > {i}"
        for i in range(2 * MASK_GROUP + 7)
    ]
    expressions = [compile_expression(source, schema=schema) for source in sources]
    program = compile_row(
        [expression.tree for expression in expressions], mode="mask", sources=sources
    )
    return expressions, program


def test_a_large_mask_is_compiled_in_groups_and_answers_as_each_rule() -> None:
    # One function per group of rules (issue 9, item 13: CPython compiles one 2,000-rule
    # function more slowly than several smaller ones); the joined mask must not change.
    expressions, program = _large_mask()
    assert len(program.parts) == 3
    # Each group's optimistic code reads each field once, into a local.
    assert program.python_source.count("fact['cpu']") == 3
    now = datetime(2026, 1, 1, tzinfo=UTC)
    facts: list[dict[str, Any]] = [
        {"cpu": 100.0, "n": 300, "at": datetime(2025, 1, 1, tzinfo=UTC)},
        {"cpu": None, "n": 10, "at": None},
        {"n": 400},  # missing fields: the checked fallback of every group
        {"cpu": 3.5, "n": None, "at": datetime(2025, 12, 1)},
    ]
    for fact in facts:
        expected = sum(1 << i for i, e in enumerate(expressions) if e.matches(fact, now=now))
        assert program.function(fact, now) == expected


def test_the_groups_of_a_large_mask_see_one_evaluation_time() -> None:
    # The joining function normalizes `now` once; a group normalizing it again would give
    # rules of one fact different times when none is given.
    _, program = _large_mask()
    assert program.python_source.count("_normalize_now(now)") == 1
    assert program.function({"n": 1, "cpu": 1.0, "at": datetime(2020, 1, 1)}) != 0


def test_only_the_group_that_meets_a_null_compiles_its_checked_code() -> None:
    schema = FactSchema.from_mapping({"cpu": "number", "late": "number"})
    sources = [f"cpu < {i}" for i in range(MASK_GROUP)] + ["late > 1", "late < 0"]
    expressions = [compile_expression(source, schema=schema) for source in sources]
    program = compile_row([e.tree for e in expressions], mode="mask", sources=sources)
    first, last = program.parts
    checked_first, checked_last = (part.function.__globals__["_checked"] for part in (first, last))
    assert program.function({"cpu": 5.0, "late": None}) == sum(1 << i for i in range(6, 250))
    assert first.function.__globals__["_checked"] is checked_first
    assert last.function.__globals__["_checked"] is not checked_last
