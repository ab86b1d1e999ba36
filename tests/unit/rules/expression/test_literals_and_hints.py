"""true/false/null literals, and operators from other languages pointed out with ours."""

from __future__ import annotations

import pytest

from reclaim.rules.expression import ExpressionError, FactSchema, compile_expression


def test_json_spellings_are_literals_without_a_schema() -> None:
    assert compile_expression("cost > 50 and true").evaluate({"cost": 60}) is True
    assert compile_expression("cost > 50 and false").evaluate({"cost": 60}) is False
    assert compile_expression("cost > 50 or null").evaluate({"cost": 10}) is None
    assert compile_expression("env is null").evaluate({}) is True
    assert compile_expression("coalesce(env, null, 'x')").evaluate({}) == "x"
    assert compile_expression("true").fields == frozenset()


def test_comparing_with_null_points_to_is_none() -> None:
    with pytest.raises(ExpressionError, match="comparing with null using '==' is always null"):
        compile_expression("env == null")


def test_a_declared_field_or_constant_named_true_still_wins() -> None:
    schema = FactSchema.from_mapping({"null": "integer"})
    assert compile_expression("null > 1", schema=schema).evaluate({"null": 2}) is True
    assert compile_expression("true", constants={"true": 0}).evaluate({}) == 0


@pytest.mark.parametrize(
    ("source", "spelling", "ours", "column"),
    [
        ("a && b", "&&", "and", 3),
        ("a || b", "||", "or", 3),
        ("!flag", "!", "not", 1),
        ("x === 1", "===", "==", 3),
        ("x !== 1", "!==", "!=", 3),
        ("x <> 1", "<>", "!=", 3),
    ],
)
def test_foreign_operators_get_a_hint(source: str, spelling: str, ours: str, column: int) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(source)
    assert caught.value.message == f"{spelling!r} is not an operator of this language"
    assert caught.value.fix == f"write {ours!r} instead"
    assert caught.value.location is not None
    assert caught.value.location.column == column


def test_an_ordinary_syntax_error_is_unchanged() -> None:
    with pytest.raises(ExpressionError, match="syntax error"):
        compile_expression("x != ")
