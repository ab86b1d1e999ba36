"""Null semantics and evaluation, checked in both evaluators on the same cases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from reclaim.rules.expression import (
    EvaluationError,
    FactSchema,
    compile_expression,
    compile_predicates,
)

SCHEMA = FactSchema.from_mapping(
    {
        "n": "number",
        "i": "integer",
        "s": "string",
        "b": "boolean",
        "l": "list",
        "t": "datetime",
        "tags": {"owner": "string", "cost-center": "string"},
    }
)
NOW = datetime(2024, 6, 1, tzinfo=UTC)


def both(source: str, fact: dict[str, Any], **kwargs: Any) -> tuple[Any, Any]:
    """(row value, columnar value) of ``source`` for one fact."""
    expression = compile_expression(source, schema=SCHEMA, **kwargs)
    row = expression.evaluate(fact, now=NOW)
    frame = pl.DataFrame([fact]) if fact else pl.DataFrame({"_": [0]})
    column = frame.with_columns(expression.to_polars(now=NOW, schema=frame.schema).alias("v"))
    return row, column.get_column("v").to_list()[0]


@pytest.mark.parametrize(
    ("source", "fact", "expected"),
    [
        # arithmetic and comparison with null give null
        ("n + 1", {"n": None}, None),
        ("n < 10", {"n": None}, None),
        ("n < 10", {}, None),
        ("s == 'a'", {"s": None}, None),
        ("s != 'a'", {"s": None}, None),
        # Kleene and/or/not
        ("n < 10 and i > 1", {"n": None, "i": 0}, False),
        ("n < 10 and i > 1", {"n": None, "i": 5}, None),
        ("n < 10 or i > 1", {"n": None, "i": 5}, True),
        ("n < 10 or i > 1", {"n": None, "i": 0}, None),
        ("not (n < 10)", {"n": None}, None),
        ("not (n < 10)", {"n": 20.0}, True),
        # in / not in
        ("s in ['a', 'b']", {"s": None}, None),
        ("s in ['a', None]", {"s": "c"}, False),
        ("s not in ['a']", {"s": None}, None),
        ("s not in ['a']", {"s": "b"}, True),
        ("i in l", {"i": 2, "l": [1, 2]}, True),
        ("i in l", {"i": 3, "l": [1, None]}, False),
        ("i in l", {"i": None, "l": [1]}, None),
        ("'b' in s", {"s": "abc"}, True),
        # is None never is null
        ("s is None", {"s": None}, True),
        ("s is not None", {}, False),
        # conditional: a null condition takes the else branch
        ("1 if b else 2", {"b": None}, 2),
        ("1 if b else 2", {"b": True}, 1),
        # division by zero is null
        ("n / 0", {"n": 1.0}, None),
        ("i // 0", {"i": 1}, None),
        ("i % 0", {"i": 1}, None),
        ("i / 2", {"i": 3}, 1.5),
        ("-7 // 2", {}, -4),
        ("-7 % 2", {}, 1),
        ("i ** 2", {"i": 3}, 9.0),
        ("i ** -1", {"i": 0}, None),
        # truthiness of non-booleans in conditions
        ("s and i", {"s": "x", "i": 0}, False),
        ("s or i", {"s": "", "i": 0}, False),
        ("s or i", {"s": None, "i": 0}, None),
        ("not l", {"l": []}, True),
        # nested access: missing key / out of range is null
        ("tags.owner", {"tags": {"cost-center": "x"}}, None),
        ("tags['cost-center']", {"tags": {"cost-center": "x", "owner": None}}, "x"),
        ("tags.owner", {"tags": None}, None),
        ("l[5]", {"l": [1]}, None),
        ("l[-1]", {"l": [1, 2]}, 2),
        # chained comparison
        ("1 < i < 5", {"i": 3}, True),
        ("1 < i < 5", {"i": None}, None),
        # functions' null behaviour
        ("coalesce(s, 'x')", {"s": None}, "x"),
        ("min(n, 3)", {"n": None}, 3),
        ("max(n, i)", {"n": None, "i": None}, None),
        ("lower(s)", {"s": None}, None),
        ("len(s)", {"s": "héllo"}, 5),
        ("round(n, 1)", {"n": 2.25}, 2.2),
        ("round(n)", {"n": 2.5}, 2.0),
        ("abs(i)", {"i": -3}, 3),
        ("startswith(s, 'ab')", {"s": "abc"}, True),
        ("contains(s, None)", {"s": "abc"}, None),
        ("matches(s, '^a.c$')", {"s": "abc"}, True),
        ("matches(s, '^a.c$')", {"s": None}, None),
        ("days_since(t)", {"t": datetime(2024, 5, 31)}, 1.0),
        ("days_since(t)", {"t": datetime(2024, 5, 31, 12, tzinfo=UTC)}, 0.5),
        ("t < now()", {"t": datetime(2024, 5, 31)}, True),
        ("t > now()", {"t": datetime(2024, 6, 2, tzinfo=UTC)}, True),
        ("days_since(t)", {"t": None}, None),
    ],
)
def test_null_semantics_are_identical_in_both_evaluators(
    source: str, fact: dict[str, Any], expected: Any
) -> None:
    row, column = both(source, fact)
    assert row == expected
    assert column == expected
    assert (row is None) == (column is None) == (expected is None)


@pytest.mark.parametrize(
    ("source", "fact", "matched"),
    [
        ("n < 10", {"n": None}, False),
        ("not (n < 10)", {"n": None}, False),
        ("not (n < 10)", {}, False),
        ("not (s == 'a')", {"s": None}, False),
        ("not (s in ['a'])", {"s": None}, False),
        ("not (s in ['a'])", {"s": "b"}, True),
        ("s != 'a'", {"s": None}, False),
        ("n < 10 or s == 'a'", {"n": None, "s": "a"}, True),
        ("not (n < 10 and s == 'a')", {"n": None, "s": "b"}, True),
        ("not (n < 10 or s == 'a')", {"n": None, "s": "b"}, False),
        ("not (b if s else b)", {"b": False, "s": "x"}, True),
        ("not s", {"s": ""}, True),
        ("not s", {"s": None}, False),
        ("b", {"b": None}, False),
        ("not b", {"b": None}, False),
        ("not b", {"b": False}, True),
    ],
)
def test_a_null_predicate_does_not_match(source: str, fact: dict[str, Any], matched: bool) -> None:
    expression = compile_expression(source, schema=SCHEMA)
    assert expression.matches(fact) is matched
    assert expression.row_predicate(fact) is matched
    assert compile_predicates([expression])(fact) == [matched]
    frame = pl.DataFrame([fact]) if fact else pl.DataFrame({"_": [0]})
    kept = frame.filter(expression.to_polars(schema=frame.schema)).height
    assert kept == int(matched)


def test_missing_columns_and_struct_keys_are_null_when_the_frame_schema_is_given() -> None:
    frame = pl.DataFrame({"tags": [{"team": "a"}, {"team": "b"}]})
    expression = compile_expression("coalesce(tags.owner, s, 'nobody')", schema=SCHEMA)
    values = frame.with_columns(v=expression.to_polars(schema=frame.schema))["v"].to_list()
    assert values == ["nobody", "nobody"]


def test_fields_typed_any_take_their_type_from_the_frame() -> None:
    expression = compile_expression("len(name) > 2 and 'x' in items")
    frame = pl.DataFrame({"name": ["abc", "a"], "items": [["x"], ["x"]]})
    result = frame.select(expression.to_polars(schema=frame.schema)).to_series().to_list()
    assert result == [True, False]
    from reclaim.rules.expression import ExpressionError

    with pytest.raises(ExpressionError, match="cannot be computed column-wise"):
        expression.to_polars()


def test_predicates_evaluate_many_rules_in_one_call() -> None:
    expressions = [
        compile_expression(s, schema=SCHEMA, constants={"watch": ["ann"]})
        for s in ["n < 10 and i > 1", "s in watch", "not b", "tags.owner is None"]
    ]
    evaluate = compile_predicates(expressions)
    fact = {"n": 1.0, "i": 2, "s": "ann", "b": None}
    assert evaluate(fact) == [True, True, False, True]
    assert evaluate({}) == [False, False, False, True]


def test_now_is_fixed_per_call_and_identical_in_both_evaluators() -> None:
    expression = compile_expression("days_since(t)", schema=SCHEMA)
    fact = {"t": datetime(2024, 1, 1, tzinfo=UTC)}
    later = NOW + timedelta(days=2)
    assert expression.evaluate(fact, now=NOW) == 152.0
    assert expression.evaluate(fact, now=later) == 154.0
    frame = pl.DataFrame([fact])
    assert frame.select(expression.to_polars(now=later)).item() == 154.0
    # naive "now" means UTC
    assert expression.evaluate(fact, now=datetime(2024, 6, 3)) == 154.0
    # without now, the current time is used
    assert expression.evaluate(fact) > 300


def test_dates_count_as_utc_midnight() -> None:
    expression = compile_expression("days_since(t)", schema=SCHEMA)
    assert expression.evaluate({"t": date(2024, 5, 30)}, now=NOW) == 2.0


def test_undeclared_types_fail_at_evaluation_with_the_expression_named() -> None:
    expression = compile_expression("cpu < 10")
    with pytest.raises(EvaluationError, match="cannot evaluate 'cpu < 10'"):
        expression.matches({"cpu": "high"})
    evaluate = compile_predicates([compile_expression("x > 1"), expression])
    with pytest.raises(EvaluationError, match="'cpu < 10'"):
        evaluate({"x": 2, "cpu": "high"})


def test_lists_of_expressions() -> None:
    row, column = both("i in [n, 3]", {"i": 3, "n": None})
    assert row is True
    assert column is True
    row, column = both("i in [n, 4]", {"i": 3, "n": None})
    assert row is False
    assert column is False


def test_constant_maps_and_lists_fold() -> None:
    row, column = both(
        "limits.cpu + sizes[1]", {}, constants={"limits": {"cpu": 5}, "sizes": [1, 2]}
    )
    assert row == column == 7
