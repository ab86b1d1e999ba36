"""Errors of the expression language.

``ExpressionError`` is found while compiling (before any fact is looked at) and names the file
position of the offending token; ``EvaluationError`` is raised while evaluating, only when a fact
holds a value of a type the schema did not declare (fields typed ``any``).
"""

from __future__ import annotations

__all__ = ["EvaluationError", "ExpressionError"]

from reclaim.errors import ConfigError, ExecutionError


class ExpressionError(ConfigError):
    """The expression is invalid; fix it before anything runs."""


class EvaluationError(ExecutionError):
    """A fact holds a value the expression cannot work with."""
