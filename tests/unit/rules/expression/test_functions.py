"""The function table documents itself, and every documented example runs in both evaluators."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from reclaim.rules.expression import FUNCTIONS, compile_expression

NOW = datetime(2024, 6, 1, tzinfo=UTC)
REQUIRED = {
    "len", "abs", "min", "max", "round", "lower", "upper", "startswith", "endswith",
    "contains", "coalesce", "days_since", "now", "matches", "number", "datetime", "any", "all",
}  # fmt: skip


def test_the_table_has_the_required_functions() -> None:
    assert set(FUNCTIONS) == REQUIRED


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_documents_itself(name: str) -> None:
    spec = FUNCTIONS[name]
    assert spec.name == name
    assert spec.signature.startswith(f"{name}(")
    assert spec.doc
    assert spec.nulls
    assert name + "(" in spec.example


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_example_gives_its_result_in_both_evaluators(name: str) -> None:
    spec = FUNCTIONS[name]
    expression = compile_expression(spec.example)
    fact = dict(spec.example_fact)
    assert expression.evaluate(fact, now=NOW) == spec.example_result
    frame = pl.DataFrame([fact]) if fact else pl.DataFrame({"_": [0]})
    column = frame.with_columns(v=expression.to_polars(now=NOW, schema=frame.schema))
    assert column["v"].to_list() == [spec.example_result]
