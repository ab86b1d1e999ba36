"""The row evaluator's generated code: literals stay values, no builtins, both paths agree."""

from __future__ import annotations

from pathlib import Path

from reclaim.rules.expression import FactSchema, compile_expression, compile_predicates
from reclaim.rules.expression.row import compile_row

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
