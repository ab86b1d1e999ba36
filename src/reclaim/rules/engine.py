"""Evaluating a rule set: one fact at a time (row) or a whole table at once (columnar).

Row: all conditions of a rule set are tested per fact by one compiled function
(``compile_predicates``) that returns the fired rules as a bit mask, then actions run only for
the rules that matched; the matches of rules whose parameters are constants are built once and
looked up by mask, so a rule set costs little more than its conditions. Columnar: every
condition becomes a Polars expression; one lazy query per rule filters the matching rows and
computes the parameters over them only, and the queries run together (in parallel).

Both follow the same modes and the same null semantics (a condition that is null does not
match), and give the same matches; a test holds them to it.

Tie-breaks, for both:

- ``all``: every rule that matches, listed by priority (higher first), then file order.
- ``first``: only the first of that list.
- ``ordered``: every rule in file order; a rule's condition and parameters see the fields that
  earlier ``set`` actions (or host actions registered with ``updates_context``) wrote, and the
  last write to a field wins. Host actions run in row evaluation only; the columnar evaluator
  computes their parameters but does not call them, nor apply their context updates.
"""

from __future__ import annotations

__all__ = ["evaluate_fact", "evaluate_facts", "evaluate_frame"]

import datetime
from collections.abc import Iterable, Mapping
from functools import cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from reclaim.errors import ExecutionError, ReclaimError, SourceLocation
from reclaim.rules.expression import EvaluationError, FieldType
from reclaim.rules.ruleset import Match, Outcome, Rule, RuleSet, rule_error

if TYPE_CHECKING:
    import polars as pl
else:
    # Polars is imported by the first columnar evaluation: the row evaluator never needs it,
    # and importing it was most of a small rule set's first ``evaluate``.
    from reclaim.rules.expression.lazy import polars as pl

_MATCH_COLUMNS = ("row", "rule_id", "action", "priority")


def _fire(
    rule: Rule,
    context: Mapping[str, Any],
    now: datetime.datetime | None,
    run_actions: bool,
) -> tuple[Match, Mapping[str, Any] | None]:
    try:
        params = rule.evaluate_params(context, now) if rule.params else {}
    except EvaluationError as exc:
        raise rule_error(rule, exc) from exc
    spec = rule.action
    updates: Mapping[str, Any] | None = None
    if spec is None:
        return Match(rule.id, None, params, None, rule.priority, rule.tags), None
    if spec.builtin:
        # Built-in handlers return their parameters; skip the call on the hot path.
        updates = params if spec.updates_context else None
        return Match(rule.id, spec.name, params, params, rule.priority, rule.tags), updates
    result: Any = None
    if spec.pure or run_actions:
        try:
            # A read-only view, not a copy: handlers must not keep it past the call.
            result = spec.handler(MappingProxyType(context), params)
        except Exception as exc:
            raise ExecutionError(
                f"action {spec.name!r} of rule {rule.id!r} failed: {exc}",
                fix="fix the action's code; the rule set itself is valid",
            ) from exc
        if spec.updates_context:
            if not isinstance(result, Mapping):
                raise ExecutionError(
                    f"action {spec.name!r} of rule {rule.id!r} must return a mapping of fields "
                    f"to set, not {type(result).__name__}",
                    fix="return a dict, or register the action without updates_context",
                )
            updates = result
    return Match(rule.id, spec.name, params, result, rule.priority, rule.tags), updates


def evaluate_fact(
    ruleset: RuleSet,
    fact: Mapping[str, Any],
    *,
    now: datetime.datetime | None = None,
    run_actions: bool = True,
) -> Outcome:
    """Evaluate one fact; see the module doc for the modes. The fact is not modified."""
    if ruleset.mode == "ordered" and ruleset.updates_context:
        return _evaluate_ordered(ruleset.active_rules, fact, now, run_actions)
    mask = ruleset.predicate_mask(fact, now)
    if not mask:
        return Outcome(fact, fact, ())
    matches = ruleset.match_plans.get(mask)
    if matches is not None:
        return Outcome(fact, fact, matches)
    return _outcome_of_mask(ruleset, fact, mask, now, run_actions)


# Distinct fired-rule masks remembered per rule set; beyond it, outcomes are built each time.
_MAX_PLANS = 4096


def _outcome_of_mask(
    ruleset: RuleSet,
    fact: Mapping[str, Any],
    mask: int,
    now: datetime.datetime | None,
    run_actions: bool,
) -> Outcome:
    """The outcome of a fact whose fired rules are the bits of ``mask`` (in evaluation
    order); remembered in ``ruleset.match_plans`` when it cannot depend on the fact."""
    rules = ruleset.active_rules
    static = ruleset.static_matches
    first_only = ruleset.mode == "first"
    matches: list[Match] = []
    context: dict[str, Any] | None = None
    reusable = True
    remaining = mask
    while remaining:
        lowest = remaining & -remaining
        remaining ^= lowest
        index = lowest.bit_length() - 1
        shared = static[index]
        if shared is not None:
            matches.append(shared)
        else:
            reusable = False
            match, updates = _fire(rules[index], fact, now, run_actions)
            matches.append(match)
            if updates:
                if context is None:
                    context = dict(fact)
                context.update(updates)
        if first_only:
            break
    found = tuple(matches)
    plans = ruleset.match_plans
    if reusable and len(plans) < _MAX_PLANS:
        plans[mask] = found
    return Outcome(fact, fact if context is None else context, found)


def _evaluate_ordered(
    rules: tuple[Rule, ...],
    fact: Mapping[str, Any],
    now: datetime.datetime | None,
    run_actions: bool,
) -> Outcome:
    context = dict(fact)
    matches: list[Match] = []
    for rule in rules:
        try:
            if not rule.condition.row_predicate(context, now):
                continue
        except EvaluationError as exc:
            raise rule_error(rule, exc) from exc
        match, updates = _fire(rule, context, now, run_actions)
        matches.append(match)
        if updates:
            context.update(updates)
    return Outcome(fact, context, tuple(matches))


def evaluate_facts(
    ruleset: RuleSet,
    facts: Iterable[Mapping[str, Any]],
    *,
    now: datetime.datetime | None = None,
    run_actions: bool = True,
) -> list[Outcome]:
    """Evaluate many facts with the row evaluator, in order.

    The same as calling :func:`evaluate_fact` on each, with the per-fact overhead hoisted:
    one compiled call tests every condition and returns the fired rules as a bit mask; a
    fact that fires nothing, or only rules whose match is always the same, costs that call
    and one table lookup.
    """
    if ruleset.mode == "ordered" and ruleset.updates_context:
        return [evaluate_fact(ruleset, fact, now=now, run_actions=run_actions) for fact in facts]
    mask_of = ruleset.predicate_mask
    plans = ruleset.match_plans
    plan = plans.get
    outcomes: list[Outcome] = []
    append = outcomes.append
    for fact in facts:
        mask = mask_of(fact, now)
        if not mask:
            append(Outcome(fact, fact, ()))
            continue
        matches = plan(mask)
        if matches is None:
            append(_outcome_of_mask(ruleset, fact, mask, now, run_actions))
        else:
            append(Outcome(fact, fact, matches))
    return outcomes


def _empty_matches(param_names: list[str]) -> pl.DataFrame:
    schema: dict[str, Any] = {
        "row": pl.UInt32,
        "rule_id": pl.String,
        "action": pl.String,
        "priority": pl.Int64,
    }
    frame = pl.DataFrame(schema=schema)
    if param_names:
        frame = frame.with_columns(
            pl.lit(None).cast(pl.Struct(dict.fromkeys(param_names, pl.Null))).alias("params")
        )
    return frame


def _param_names(rules: Iterable[Rule]) -> list[str]:
    names: list[str] = []
    for rule in rules:
        for name in rule.params:
            if name not in names:
                names.append(name)
    return names


# "__row" is never null, so these are identities that make Polars broadcast: a condition or
# parameter over an all-null or absent field can compile to a single value rather than a
# column, and a single non-literal value does not broadcast beside full columns on its own.
@cache
def _every_row() -> pl.Expr:
    return pl.col("__row").is_not_null()


def _column_of(condition: pl.Expr) -> pl.Expr:
    return (_every_row() & condition).fill_null(False)


def _values_of(value: pl.Expr) -> pl.Expr:
    return pl.when(_every_row()).then(value)


@cache
def _polars_types() -> dict[FieldType, pl.DataType]:
    return {
        FieldType.NUMBER: pl.Float64(),
        FieldType.INTEGER: pl.Int64(),
        FieldType.STRING: pl.String(),
        FieldType.BOOLEAN: pl.Boolean(),
        FieldType.DATETIME: pl.Datetime("us", "UTC"),
    }


def _with_missing_fields(frame: pl.DataFrame, ruleset: RuleSet) -> pl.DataFrame:
    # A field absent from the table is null for every fact, as a missing key is in a row fact.
    # Absent and all-null (dtype Null) columns get their declared type, so every condition
    # compiles to a full-length column whatever the table leaves out.
    schema = ruleset.schema
    columns: list[pl.Expr] = []
    for name in sorted(ruleset.fields):
        present = name in frame.columns
        if present and frame.schema[name] != pl.Null:
            continue
        spec = schema.get(name) if schema is not None else None
        dtype = _polars_types().get(spec.type) if spec is not None else None
        if dtype is not None:
            source = pl.col(name) if present else pl.lit(None)
            columns.append(source.cast(dtype).alias(name))
        elif not present:
            columns.append(pl.lit(None).alias(name))
    return frame.with_columns(columns) if columns else frame


def _match_rows(
    source: pl.LazyFrame,
    condition: pl.Expr | pl.Series,
    rule: Rule,
    order: int,
    now: datetime.datetime | None,
    schema: Mapping[str, pl.DataType],
) -> pl.LazyFrame:
    # Lazy, so Polars reads only the columns the condition and the parameters need.
    return source.filter(condition).select(_match_columns(rule, order, now, schema))


def _match_columns(
    rule: Rule, order: int, now: datetime.datetime | None, schema: Mapping[str, pl.DataType]
) -> list[pl.Expr]:
    columns: list[pl.Expr] = [
        pl.col("__row").alias("row"),
        pl.lit(rule.id, dtype=pl.String).alias("rule_id"),
        pl.lit(rule.action.name if rule.action else None, dtype=pl.String).alias("action"),
        pl.lit(rule.priority, dtype=pl.Int64).alias("priority"),
        pl.lit(order, dtype=pl.Int64).alias("__order"),
    ]
    columns.extend(
        _values_of(value.to_polars(now, schema)).alias(f"__p_{name}")
        for name, value in rule.params.items()
    )
    return columns


def _assemble(parts: list[pl.DataFrame], param_names: list[str]) -> pl.DataFrame:
    parts = [part for part in parts if part.height]
    if not parts:
        return _empty_matches(param_names)
    columns: list[pl.Expr] = [pl.col(name) for name in _MATCH_COLUMNS]
    found = {name for part in parts for name in part.columns}
    present = [name for name in param_names if f"__p_{name}" in found]
    if present:
        columns.append(
            pl.struct([pl.col(f"__p_{name}").alias(name) for name in present]).alias("params")
        )
    # Parts come in rule order, so a stable sort by fact keeps the rules' order within a fact.
    # One lazy query: the concatenation, sort and struct are fused rather than copied thrice.
    combined = pl.concat([part.lazy() for part in parts], how="diagonal_relaxed")
    return combined.sort("row", maintain_order=True).select(columns).collect()


def _assemble_fused(
    queries: list[pl.LazyFrame], rules: tuple[Rule, ...], param_names: list[str]
) -> pl.DataFrame:
    """Like _assemble over the collected queries, in one query: concatenated, then sorted by
    fact (parts are in rule order, and the sort is stable). Only for plans whose parameter
    columns have one type across rules, so concatenating the parts of rules that matched
    nothing cannot change a column's type."""
    combined = pl.concat(queries, how="diagonal").sort("row", maintain_order=True).collect()
    if not combined.height:
        return _empty_matches(param_names)
    fired = set(combined.get_column("__order").unique().to_list())
    present = [name for name in param_names if any(name in rules[o].params for o in fired)]
    columns: list[pl.Expr] = [pl.col(name) for name in _MATCH_COLUMNS]
    if present:
        columns.append(
            pl.struct([pl.col(f"__p_{name}").alias(name) for name in present]).alias("params")
        )
    return combined.select(columns)


def evaluate_frame(
    ruleset: RuleSet, frame: pl.DataFrame, *, now: datetime.datetime | None = None
) -> pl.DataFrame:
    """Evaluate a table of facts column-wise; see :meth:`RuleSet.evaluate_frame`.

    Raises EvaluationError naming the rule and the expression when Polars cannot compute one
    (a column whose dtype the rule cannot use, for instance).
    """
    try:
        return _evaluate_frame(ruleset, frame, now)
    except _frame_errors() as exc:
        raise _frame_error(ruleset, frame, now, exc) from exc


@cache
def _frame_errors() -> tuple[type[BaseException], ...]:
    """Errors Polars (or building its expressions) raises for a table the rules cannot use
    (an ``except`` clause evaluates this only once an exception is raised)."""
    return (pl.exceptions.PolarsError, ReclaimError, TypeError, ValueError, OverflowError)


def _first_line(exc: BaseException) -> str:
    if isinstance(exc, ReclaimError):
        return exc.message
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _frame_error(
    ruleset: RuleSet, frame: pl.DataFrame, now: datetime.datetime | None, exc: BaseException
) -> EvaluationError:
    """The error of the first rule that fails on its own, as one line: rule, place,
    expression, cause and fix. Run only after evaluation failed, so it may be slow."""
    work = _with_missing_fields(frame, ruleset).with_row_index("__row")
    for rule in ruleset.active_rules:
        expressions = [rule.condition] + [
            expression for value in rule.params.values() for expression in value.expressions
        ]
        for expression in expressions:
            try:
                built = (
                    expression.to_polars_predicate(now=now, schema=work.schema)
                    if expression is rule.condition
                    else expression.to_polars(now=now, schema=work.schema)
                )
                work.select(_values_of(built))
            except _frame_errors() as cause:
                return _rule_error(rule, expression.source, cause)
    return EvaluationError(
        f"rule set {ruleset.name!r} cannot be evaluated column-wise: {_first_line(exc)}",
        location=SourceLocation(ruleset.path) if ruleset.path else None,
        fix=_FRAME_FIX,
    )


def _rule_error(rule: Rule, source: str, cause: BaseException) -> EvaluationError:
    fix = cause.fix if isinstance(cause, ReclaimError) and cause.fix else _FRAME_FIX
    text = " ".join(source.split())
    if len(text) > 120:
        text = text[:117] + "..."
    return EvaluationError(
        f"rule {rule.id!r}: {text!r} cannot be evaluated column-wise: {_first_line(cause)}",
        location=rule.location,
        fix=fix,
    )


_FRAME_FIX = (
    "declare the fields' types under 'facts:' in the rule file, or correct the facts "
    "(e.g. numbers written as text)"
)


def _evaluate_frame(
    ruleset: RuleSet, frame: pl.DataFrame, now: datetime.datetime | None
) -> pl.DataFrame:
    rules = ruleset.active_rules
    param_names = _param_names(rules)
    work = _with_missing_fields(frame, ruleset).with_row_index("__row")
    if ruleset.mode == "ordered" and ruleset.updates_context:
        return _evaluate_frame_ordered(rules, work, now, param_names)
    if not rules:
        return _empty_matches(param_names)
    conditions, selections, fusable = _frame_plan(ruleset, work.schema, now)
    if ruleset.mode == "first":
        winner = pl.coalesce(
            [
                pl.when(condition).then(pl.lit(index, dtype=pl.Int64))
                for index, condition in enumerate(conditions)
            ]
        )
        work = work.with_columns(winner.alias("__winner"))
        conditions = [(pl.col("__winner") == index).fill_null(False) for index in range(len(rules))]
    source = work.lazy()
    if len(rules) <= _FEW_RULES:
        # One lazy query per rule, run together: each filters the rows its condition keeps
        # and computes the parameters over those only.
        queries = [
            source.filter(condition).select(columns)
            for condition, columns in zip(conditions, selections, strict=True)
        ]
        if fusable:
            return _assemble_fused(queries, rules, param_names)
    else:
        # Many rules: every condition in one select first, then queries only for the rules
        # that matched some fact (a query per rule would cost more to plan than to run).
        hits = work.select(
            condition.alias(f"__hit{index}") for index, condition in enumerate(conditions)
        )
        queries = [
            source.filter(mask).select(columns)
            for mask, columns in zip(hits.iter_columns(), selections, strict=True)
            if mask.any()
        ]
    return _assemble(pl.collect_all(queries), param_names)


def _one_type_per_param(
    schema: Mapping[str, pl.DataType],
    conditions: list[pl.Expr],
    selections: list[list[pl.Expr]],
) -> bool:
    if len(conditions) > _FEW_RULES:
        return False
    empty = pl.LazyFrame(schema=dict(schema))
    types: dict[str, pl.DataType] = {}
    for condition, columns in zip(conditions, selections, strict=True):
        for name, dtype in empty.filter(condition).select(columns).collect_schema().items():
            if name.startswith("__p_") and types.setdefault(name, dtype) != dtype:
                return False
    return True


# Up to this many rules, the columnar evaluator plans one lazy query per rule.
_FEW_RULES = 64


# Frame schemas whose compiled Polars expressions are kept per rule set.
_MAX_FRAME_PLANS = 8


def _frame_plan(
    ruleset: RuleSet, schema: Mapping[str, pl.DataType], now: datetime.datetime | None
) -> tuple[list[pl.Expr], list[list[pl.Expr]], bool]:
    """Every active rule's condition and match columns as Polars expressions over frames of
    ``schema``: compiled once per schema, unless a rule reads the time (``now()``)."""
    rules = ruleset.active_rules
    key = None if ruleset.uses_now else tuple(schema.items())
    plans = ruleset.frame_plans
    if key is not None and key in plans:
        return plans[key]
    conditions = [
        _column_of(rule.condition.to_polars_predicate(now=now, schema=schema)) for rule in rules
    ]
    selections = [_match_columns(rule, index, now, schema) for index, rule in enumerate(rules)]
    plan = (conditions, selections, _one_type_per_param(schema, conditions, selections))
    if key is not None and len(plans) < _MAX_FRAME_PLANS:
        plans[key] = plan
    return plan


def _evaluate_frame_ordered(
    rules: tuple[Rule, ...],
    work: pl.DataFrame,
    now: datetime.datetime | None,
    param_names: list[str],
) -> pl.DataFrame:
    parts: list[pl.DataFrame] = []
    for index, rule in enumerate(rules):
        condition = rule.condition.to_polars_predicate(now=now, schema=work.schema)
        hit = work.select(_column_of(condition)).to_series()
        if not hit.any():
            continue
        parts.append(_match_rows(work.lazy(), hit, rule, index, now, work.schema).collect())
        spec = rule.action
        if spec is not None and spec.updates_context and spec.builtin:
            updates = [
                pl.when(hit)
                .then(_values_of(value.to_polars(now, work.schema)))
                .otherwise(pl.col(name) if name in work.columns else pl.lit(None))
                .alias(name)
                for name, value in rule.params.items()
            ]
            work = work.with_columns(updates)
    return _assemble(parts, param_names)
