"""Explain: each comparison with its actual and expected values, rendered as a tree."""

from __future__ import annotations

from reclaim.rules.expression import FactSchema, compile_expression

SCHEMA = FactSchema.from_mapping({"cpu_avg": "number", "monthly_cost": "number", "env": "string"})


def test_explain_records_each_comparison() -> None:
    expression = compile_expression("cpu_avg < 10 and monthly_cost > 50", schema=SCHEMA)
    tree = expression.explain({"cpu_avg": 4.2, "monthly_cost": 20.0})
    assert tree.value is False
    first, second = tree.children
    assert (first.text, first.op, first.actual, first.expected, first.value) == (
        "cpu_avg < 10", "<", 4.2, 10, True,
    )  # fmt: skip
    assert (second.op, second.actual, second.expected, second.value) == (">", 20.0, 50, False)
    assert tree.render() == (
        "cpu_avg < 10 and monthly_cost > 50  → ✗\n"
        "├─ cpu_avg < 10  → 4.2 < 10 ✓\n"
        "└─ monthly_cost > 50  → 20.0 > 50 ✗"
    )


def test_explain_shows_nulls_and_function_values() -> None:
    expression = compile_expression(
        "lower(env) in ['dev', 'test'] or cpu_avg is None", schema=SCHEMA
    )
    rendered = expression.explain({"env": "PROD"}).render()
    assert "lower(env) in ['dev', 'test']  → 'prod' in ['dev', 'test'] ✗" in rendered
    assert "cpu_avg is None  → null is None ✓" in rendered
    missing = compile_expression("cpu_avg < 10", schema=SCHEMA).explain({})
    assert missing.render() == "cpu_avg < 10  → null < 10 null"
    assert missing.value is None


def test_chained_comparisons_explain_each_link() -> None:
    tree = compile_expression("0 < cpu_avg < 10", schema=SCHEMA).explain({"cpu_avg": 12.0})
    assert [child.text for child in tree.children] == ["0 < cpu_avg", "cpu_avg < 10"]
    assert [child.value for child in tree.children] == [True, False]


def test_explain_agrees_with_matches_on_nulls() -> None:
    expression = compile_expression("not (cpu_avg < 10)", schema=SCHEMA)
    assert expression.explain({}).value is None
    assert expression.matches({}) is False
