"""The expression language of the rules engine: safe, typed, null-aware, compiled twice.

Source text is parsed with ``ast`` into a checked tree (allow-list, fact schema, types, limits)
and compiled to a Python function for one fact at a time and to a Polars expression for a table
of facts. User text is never passed to ``eval`` or ``exec``. See docs/expressions.md.
"""

from reclaim.rules.expression.compiler import Expression, compile_expression, compile_predicates
from reclaim.rules.expression.errors import EvaluationError, ExpressionError
from reclaim.rules.expression.explain import ExplainNode
from reclaim.rules.expression.functions import FUNCTIONS, FunctionSpec
from reclaim.rules.expression.limits import DEFAULT_LIMITS, Limits
from reclaim.rules.expression.types import FactSchema, FieldSpec, FieldType

__all__ = [
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
