"""The expression package's public names are frozen: the rule-files code builds on them."""

from __future__ import annotations

import reclaim.rules.expression as expression

PUBLIC = [
    "DEFAULT_LIMITS",
    "FUNCTIONS",
    "EvaluationError",
    "ExplainNode",
    "Expression",
    "ExpressionError",
    "FactSchema",
    "FieldSpec",
    "FieldType",
    "FunctionSpec",
    "Limits",
    "compile_expression",
    "compile_predicates",
]


def test_public_names_are_frozen() -> None:
    assert sorted(expression.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert getattr(expression, name) is not None


def test_expression_error_is_a_config_error() -> None:
    from reclaim.errors import ConfigError, ExecutionError

    assert issubclass(expression.ExpressionError, ConfigError)
    assert issubclass(expression.EvaluationError, ExecutionError)


def test_field_types_are_the_contracted_ones() -> None:
    assert {t.value for t in expression.FieldType} == {
        "number",
        "integer",
        "string",
        "boolean",
        "datetime",
        "list",
        "map",
        "any",
    }
