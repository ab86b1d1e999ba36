"""Cases where the row and columnar evaluators (and explain) once disagreed, kept as plain tests.

Each was found from outside (issue 9) or by the property tests and the differential fuzzer
(``make fuzz``). ``agree`` evaluates one expression over a table with all three evaluators and
returns the common values; a disagreement fails with the three answers side by side.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest

from reclaim.rules.expression import (
    EvaluationError,
    ExpressionError,
    FactSchema,
    compile_expression,
)

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
NAN = math.nan
INF = math.inf


def _same(left: Any, right: Any) -> bool:
    if left is None or right is None:
        return left is None and right is None
    if isinstance(left, float) or isinstance(right, float):
        if math.isnan(left) or math.isnan(right):
            return math.isnan(left) and math.isnan(right)
        return math.isclose(left, right, rel_tol=1e-12) or left == right
    return bool(left == right) and isinstance(left, bool) is isinstance(right, bool)


def agree(
    source: str,
    rows: list[dict[str, Any]],
    *,
    schema: dict[str, Any] | None = None,
    frame_schema: dict[str, Any] | None = None,
) -> list[Any]:
    """The values of ``source`` for ``rows``: the same from row, columnar and explain."""
    fact_schema = FactSchema.from_mapping(schema) if schema is not None else None
    expression = compile_expression(source, schema=fact_schema)
    frame = pl.DataFrame(rows, schema=frame_schema)
    column = frame.with_columns(
        expression.to_polars(now=NOW, schema=frame.schema).alias("__v")
    ).get_column("__v")
    truths = frame.with_columns(
        expression.to_polars_predicate(now=NOW, schema=frame.schema).alias("__t")
    ).get_column("__t")
    row = [expression.evaluate(fact, now=NOW) for fact in rows]
    explained = [expression.explain(fact, now=NOW).value for fact in rows]
    assert all(map(_same, row, column.to_list())), (source, row, column.to_list())
    assert all(map(_same, row, explained)), (source, row, explained)
    matches = [expression.matches(fact, now=NOW) for fact in rows]
    assert [truth is True for truth in truths.to_list()] == matches, (source, truths, matches)
    return row


def matching(source: str, rows: list[dict[str, Any]], **kwargs: Any) -> list[bool]:
    agree(source, rows, **kwargs)
    expression = compile_expression(source)
    return [expression.matches(fact, now=NOW) for fact in rows]


# --- item 1: a bare value as a condition counts by its truthiness on both paths ---


def test_a_bare_text_field_is_a_condition_column_wise() -> None:
    rows = [{"invoice_number": "A-1"}, {"invoice_number": ""}, {"invoice_number": None}]
    assert matching("invoice_number", rows) == [True, False, False]


def test_a_bare_integer_field_is_a_condition_column_wise() -> None:
    assert matching("n", [{"n": 3}, {"n": 0}, {"n": None}]) == [True, False, False]


# --- item 2: a field null or absent in every row of the table ---


@pytest.mark.parametrize(
    "source",
    [
        "lower(env) == 'dev'",
        "matches(name, '^prod')",
        "abs(delta) > 5",
        "invoice_number and issue_date and vendor_id",
        "len(env) > 0",
        "coalesce(env, 'none') == 'none'",
        "env is None",
    ],
)
def test_fields_null_in_every_row_evaluate_as_in_the_row_evaluator(source: str) -> None:
    rows = [{"env": None, "name": None, "delta": None, "invoice_number": None}, {}]
    agree(source, rows)


def test_a_condition_over_an_all_null_field_is_a_full_column() -> None:
    # Found by the suite's own property test: "Series v, length 1 doesn't match the height".
    agree(
        "not (0 == (0 if flag else None))",
        [{"flag": None}, {"flag": None}],
        schema={"flag": "boolean"},
    )


def test_an_all_null_argument_says_nothing_about_the_type() -> None:
    # Found by the differential fuzzer: min(a, n) with n null in every row was "type any".
    assert agree("not min(a, n)", [{"a": 0, "n": None}, {"a": 2, "n": None}]) == [True, False]
    assert agree("not (a if a else n)", [{"a": 0, "n": None}]) == [None]


def test_an_all_null_argument_of_min_takes_the_type_of_the_others() -> None:
    # Found by make fuzz: round(n) over an all-null n is a Float64 null, so min(a, round(n))
    # was Float64 column-wise while a, and its static type, are integers, and 'in' a list of
    # integers failed ("'list.contains' cannot check for Float64 values in Int64 data").
    lists = {"a": pl.Int64, "n": pl.Null, "l": pl.List(pl.Int64)}
    rows = [{"a": None, "n": None, "l": None}, {"a": 2, "n": None, "l": [1, 2]}]
    assert agree("min(a, round(n)) in l", rows, frame_schema=lists) == [None, True]
    assert agree("max(round(n), a) + 1", rows, frame_schema=lists) == [None, 3]


def test_membership_in_a_field_null_in_every_row_is_null() -> None:
    # Found by the fuzzer's smoke pass in make test: "membership ('in') of 'z' (type any)".
    assert agree("s in z", [{"s": "a"}, {"s": None}]) == [None, None]
    assert agree("(s in z) or true", [{"s": "a"}]) == [True]


def test_truth_of_if_else_with_branches_of_different_types() -> None:
    # Found by the fuzzer's smoke pass in make test: "(type any) cannot be computed".
    # (Its value cannot be one Polars column; its truth can, and must agree.)
    rows = [{"s": "", "flag": True}, {"s": "a", "flag": True}, {"s": "", "flag": None}]
    expression = compile_expression("s if flag else (4 in [1, 2.5, None])")
    frame = pl.DataFrame(rows)
    truths = frame.select(expression.to_polars_predicate(schema=frame.schema)).to_series()
    assert truths.to_list() == [False, True, False]
    assert [expression.matches(fact) for fact in rows] == [False, True, False]


def test_a_struct_key_absent_from_the_frame_is_null() -> None:
    assert agree("lower(tags.team) == 'web'", [{"tags": {"owner": "a"}}]) == [None]


# --- item 3: values where Python and Polars differ ---


def test_regex_classes_are_ascii_on_both_paths() -> None:
    rows = [{"name": "é"}, {"name": "abc_1"}, {"name": "٣"}, {"name": "a\u00a0b"}]
    assert agree(r"matches(name, '^\w+$')", rows) == [False, True, False, False]
    assert agree(r"matches(name, '\d')", rows) == [False, True, False, False]
    assert agree(r"matches(name, '\s')", rows) == [False, False, False, False]
    assert agree(r"matches(name, r'a\b')", [{"name": "aé"}, {"name": "ab"}]) == [True, False]
    assert agree(r"matches(name, '[^\W\d]')", rows) == [False, True, False, True]


def test_a_non_boundary_is_never_inside_a_character() -> None:
    # RE2 runs on UTF-8 bytes and found \B between the two bytes of a no-break space; Rust's
    # regex reports no match that splits a character (found by make fuzz).
    rows = [{"s": "a\u00a0b"}, {"s": "ab"}, {"s": "é"}, {"s": " é "}, {"s": "€x"}, {"s": "  "}]
    assert agree(r"matches(s, r'\B')", rows) == [False, True, True, True, True, True]
    assert agree(r"matches(s, r'\B\S')", rows) == [False, True, True, True, True, False]


def test_a_counted_ascii_class_runs_on_both_paths() -> None:
    # \w{300} passed check and then failed column-wise ("regex exceeds size limit"): as an
    # ASCII class it is small enough for Rust's regex too.
    rows = [{"name": "a" * 300}, {"name": "é" * 300}]
    assert agree(r"matches(name, '^\w{300}$')", rows) == [True, False]


def test_a_regex_too_large_for_the_columnar_engine_is_rejected_when_checked() -> None:
    with pytest.raises(ExpressionError, match="cannot run column-wise"):
        compile_expression(r"matches(name, '\pL{300}')")


def test_nan_compares_false_except_with_not_equal() -> None:
    rows = [{"x": NAN, "y": NAN}, {"x": NAN, "y": 1.0}, {"x": 1.0, "y": NAN}, {"x": NAN}]
    schema = {"x": "number", "y": "number"}
    assert agree("x > 10", rows, schema=schema) == [False, False, False, False]
    assert agree("x >= y", rows, schema=schema) == [False, False, False, None]
    assert agree("x < y", rows, schema=schema) == [False, False, False, None]
    assert agree("x <= y", rows, schema=schema) == [False, False, False, None]
    assert agree("x == y", rows, schema=schema) == [False, False, False, None]
    assert agree("x != y", rows, schema=schema) == [True, True, True, None]


def test_min_and_max_skip_nan_like_null() -> None:
    rows = [{"x": NAN, "y": 1.0}, {"x": NAN, "y": NAN}, {"x": 2.0, "y": NAN}]
    schema = {"x": "number", "y": "number"}
    assert agree("min(x, y)", rows, schema=schema)[0] == 1.0
    assert agree("max(y, x)", rows, schema=schema)[2] == 2.0


def test_infinities_in_arithmetic() -> None:
    rows = [{"x": INF, "y": -INF}, {"x": INF, "y": 2.0}, {"x": 1.0, "y": INF}]
    schema = {"x": "number", "y": "number"}
    for source in ("x + y", "x * 0", "x // y", "x % y", "round(x, 2)", "abs(y)", "x - y > 0"):
        agree(source, rows, schema=schema)


def test_integer_overflow_is_null_on_both_paths() -> None:
    rows = [{"x": 2**62, "y": 4}, {"x": -(2**63), "y": -1}, {"x": 2**63 - 1, "y": 1}]
    schema = {"x": "integer", "y": "integer"}
    assert agree("x * y", rows, schema=schema) == [None, None, 2**63 - 1]
    assert agree("x * y > 0", rows, schema=schema) == [None, None, True]
    assert agree("x + y", rows, schema=schema) == [2**62 + 4, None, None]
    assert agree("-x", rows, schema=schema) == [-(2**62), None, -(2**63) + 1]
    assert agree("abs(x)", rows, schema=schema) == [2**62, None, 2**63 - 1]
    assert agree("x // y", rows, schema=schema) == [2**60, None, 2**63 - 1]
    # Without a schema the types come from the values, and the answers are the same.
    assert agree("x * y", rows) == [None, None, 2**63 - 1]


def test_float_floor_division_and_modulo_follow_polars() -> None:
    rows = [{"x": 1.0, "y": 0.1}, {"x": -7.5, "y": 2.0}, {"x": 7.0, "y": -0.5}]
    schema = {"x": "number", "y": "number"}
    assert agree("x // y", rows, schema=schema)[0] == 10.0
    assert agree("x % y", rows, schema=schema)[0] == 0.0
    assert agree("x // 0.1", rows, schema=schema)[0] == 10.0
    assert agree("x % 0.1", rows, schema=schema)[0] == 0.0


def test_round_scales_then_rounds_half_to_even() -> None:
    rows = [{"x": 2.675}, {"x": 0.125}, {"x": 1.005}, {"x": 2.5}, {"x": NAN}, {"x": INF}]
    values = agree("round(x, 2)", rows, schema={"x": "number"})
    assert values[:4] == [2.68, 0.12, 1.0, 2.5]
    assert agree("round(x)", rows, schema={"x": "number"})[3] == 2.0


def test_round_of_a_value_too_large_to_scale_leaves_it_as_it_is() -> None:
    # Found by test_numbers_agree: round(1e308, 2) was inf row-wise, 1e308 column-wise.
    rows = [{"x": 1e308}, {"x": -1e308}, {"x": 1.7e306}]
    assert agree("round(x, 2)", rows, schema={"x": "number"}) == [1e308, -1e308, 1.7e306]


def test_text_compared_with_a_number_is_never_equal() -> None:
    rows = [{"x": "5"}, {"x": None}]
    assert agree("x == 5", rows) == [False, None]
    assert agree("x != 5", rows) == [True, None]


def test_text_ordered_against_a_number_is_an_error_on_both_paths() -> None:
    expression = compile_expression("x > 5")
    frame = pl.DataFrame({"x": ["5"]})
    with pytest.raises(EvaluationError):
        expression.evaluate({"x": "5"})
    with pytest.raises(EvaluationError, match="cannot be ordered"):
        frame.select(expression.to_polars(schema=frame.schema))


def test_integer_literals_beyond_64_bits_are_rejected() -> None:
    with pytest.raises(ExpressionError, match="64 bits"):
        compile_expression("x > 10000000000000000000")


# --- item 11: conversions and any/all, the same on both paths ---


def test_number_accepts_plain_decimal_text_only() -> None:
    texts = ["1", "1.5", "+2", ".5", "5.", "1e5", " 5", "1_0", "nan", "inf", "", "abc", "٣"]
    values = agree("number(s)", [{"s": text} for text in texts] + [{"s": None}])
    assert values == [1.0, 1.5, 2.0, 0.5, 5.0, 1e5, *[None] * 8]
    assert agree("number(b)", [{"b": True}, {"b": False}]) == [1.0, 0.0]
    assert agree("number(n) + 1", [{"n": 2}]) == [3.0]


def test_datetime_parses_iso_8601_text() -> None:
    texts = [
        "2024-01-02",
        "2024-01-02T03:04",
        "2024-01-02 03:04:05",
        "2024-01-02T03:04:05.123456Z",
        "2024-01-02T03:04+05:30",
        "20240102",
        "2024-02-30",
        "2024-01-02T24:00",
        "2024-01-02Z",
    ]
    values = agree("datetime(s)", [{"s": text} for text in texts])
    assert values[0] == datetime(2024, 1, 2, tzinfo=UTC)
    assert values[4] == datetime(2024, 1, 1, 21, 34, tzinfo=UTC)
    assert values[5:] == [None] * 4
    assert agree("days_since(datetime(s)) > 30", [{"s": "2020-01-01"}]) == [True]


def test_any_and_all_skip_null_items() -> None:
    lists = [[1, 0], [None], [], None, [0, None], [2]]
    rows = [{"l": items} for items in lists]
    frame_schema = {"l": pl.List(pl.Int64)}
    assert agree("any(l)", rows, frame_schema=frame_schema) == [
        True,
        False,
        False,
        None,
        False,
        True,
    ]
    assert agree("all(l)", rows, frame_schema=frame_schema) == [
        False,
        True,
        True,
        None,
        False,
        True,
    ]
    texts = [{"s": "a"}, {"s": ""}, {"s": None}]
    assert agree("any([s, 0])", texts) == [True, False, False]
    assert agree("all([s, 1])", texts) == [True, False, True]


# --- the differences that remain, each documented in docs/expressions.md ---


def _both(source: str, rows: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    expression = compile_expression(source)
    frame = pl.DataFrame(rows)
    column = frame.with_columns(expression.to_polars(now=NOW, schema=frame.schema).alias("v"))
    return [expression.evaluate(fact, now=NOW) for fact in rows], column["v"].to_list()


def test_difference_integers_beyond_2_53_mixed_with_floats() -> None:
    # Column-wise the integer becomes a float (2**53 + 1 → 2**53); row-wise Python is exact.
    row, column = _both("x == 9007199254740992.0", [{"x": 2**53 + 1}])
    assert (row, column) == ([False], [True])


def test_difference_nan_inside_a_list_field() -> None:
    # Polars finds NaN in a list; Python's `in` finds it only if it is the very same object.
    row, column = _both("x in l", [{"x": float("nan"), "l": [float("nan"), 1.0]}])
    assert (row, column) == ([False], [True])


def test_difference_a_value_of_the_wrong_type_fails_the_whole_table() -> None:
    # The row evaluator fails on the first fact that holds such a value, and answers the
    # others; the columnar evaluator refuses the column as a whole, even its null rows.
    expression = compile_expression("x > 5")
    assert expression.evaluate({"x": None}) is None
    frame = pl.DataFrame({"x": [None, "7"]})
    with pytest.raises(EvaluationError):
        frame.select(expression.to_polars(schema=frame.schema))


def test_difference_datetime_text_columns_need_one_format() -> None:
    # A text column of a declared datetime field is parsed by Polars, which infers one format
    # for the column; the row evaluator parses each value. `reclaim rules eval` parses JSON
    # facts value by value before building the table, so it is not affected.
    schema = FactSchema.from_mapping({"created": "datetime"})
    expression = compile_expression("days_since(created) > 30", schema=schema)
    rows = [{"created": "2020-01-01T00:00:00Z"}, {"created": "2020-01-01"}]
    assert [expression.evaluate(fact, now=NOW) for fact in rows] == [True, True]
    frame = pl.DataFrame(rows)
    with pytest.raises(pl.exceptions.PolarsError):
        frame.select(expression.to_polars(now=NOW, schema=frame.schema))


@pytest.mark.parametrize("source", ["(true == number(flag))", "number(null == (m.k is not null))"])
def test_comparisons_the_checker_refuses_before_any_evaluator_runs(source: str) -> None:
    # Found by make fuzz (10,000 expressions): not a disagreement but a generator that wrote
    # comparisons of a boolean with a number, and with null. The checker refuses both, so no
    # evaluator gets to differ; the fuzzer now writes typed operands for '==' and if/else.
    schema = FactSchema.from_mapping({"flag": "boolean", "m": {"k": "integer"}})
    with pytest.raises(ExpressionError, match=r"type mismatch|comparing with null"):
        compile_expression(source, schema=schema)
    with pytest.raises(ExpressionError, match=r"type mismatch|comparing with null"):
        compile_expression(source)


@pytest.mark.parametrize(
    "source", ["(not contains(z, s))", "startswith(z, s)", "lower(z) == s", "matches(z, 'a')"]
)
def test_a_text_function_of_an_absent_untyped_field(source: str) -> None:
    # Found by make fuzz: z (type any) absent from the table folded to an untyped null, and
    # Polars' str.contains refused it ("expected String type, got: null").
    rows = [{"s": "a"}, {"s": None}]
    assert agree(source, rows) == [None, None]


# Found by make fuzz at full size over columns null in every row.
_NULLS = {"a": None, "ds": None}


@pytest.mark.parametrize("op", ["==", "!=", "<", "<=", ">", ">="])
def test_a_literal_compared_with_a_date_parsed_from_an_all_null_text_column(op: str) -> None:
    # Found by make fuzz: with the literal on the left Polars answered one row for the table.
    assert agree(
        f"(0 {op} days_since(datetime(ds)))",
        [_NULLS, _NULLS],
        frame_schema={"a": pl.Int64, "ds": pl.String},
    ) == [None, None]


@pytest.mark.parametrize("op", ["<", "<=", ">", ">=", "==", "!="])
@pytest.mark.parametrize("value", ["1.0", "0", "-2.5"])
def test_a_literal_on_the_left_compares_as_written(op: str, value: str) -> None:
    # The operands swapped for Polars (above) must keep the answer, NaN included.
    rows = [{"x": NAN}, {"x": 1.0}, {"x": None}, {"x": INF}, {"x": -2.5}, {"x": 0.0}]
    agree(f"{value} {op} x", rows, schema={"x": "number"})


@pytest.mark.parametrize("outer", ["-", "abs"])
def test_a_negated_minimum_of_a_big_integer_over_all_null_rows(outer: str) -> None:
    # Found by make fuzz: Polars typed the when/then of integer literals as Int32, so the
    # guarded negation of -2**62 came out null column-wise (2**62 row-wise).
    assert agree(
        f"{outer}(min((0 if a > 0 else 0), -(4611686018427387904)))",
        [_NULLS, _NULLS],
        schema={"a": "integer"},
        frame_schema={"a": pl.Int64, "ds": pl.String},
    ) == [2**62, 2**62]


@pytest.mark.parametrize("source", ["(-((n if flag else n)) in l)", "-(n if flag else n)"])
def test_a_choice_between_two_nulls_over_all_null_rows(source: str) -> None:
    # Found by make fuzz: both branches null gave a Null-typed column Polars cannot negate.
    rows = [{"flag": True, "n": None, "l": [1]}, {"flag": None, "n": None, "l": None}]
    assert agree(
        source, rows, frame_schema={"flag": pl.Boolean, "n": pl.Null, "l": pl.List(pl.Int64)}
    ) == [
        None,
        None,
    ]
