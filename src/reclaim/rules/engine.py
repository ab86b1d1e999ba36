"""Evaluating a rule set: one fact at a time (row) or a whole table at once (columnar).

Row: all conditions of a rule set are tested per fact by one compiled function
(``compile_predicates``), then actions run only for the rules that matched, so a rule set costs
little more than its conditions. Columnar: every condition becomes a Polars expression and all
are computed in one ``select``; parameters are computed only over the matching rows.

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
from types import MappingProxyType
from typing import Any

import polars as pl

from reclaim.errors import ExecutionError, ReclaimError, SourceLocation
from reclaim.rules.expression import EvaluationError, FieldType
from reclaim.rules.ruleset import Match, Outcome, Rule, RuleSet

_MATCH_COLUMNS = ("row", "rule_id", "action", "priority")


def _fire(
    rule: Rule,
    context: Mapping[str, Any],
    now: datetime.datetime | None,
    run_actions: bool,
) -> tuple[Match, Mapping[str, Any] | None]:
    params = rule.evaluate_params(context, now) if rule.params else {}
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
    rules = ruleset.active_rules
    if ruleset.mode == "ordered" and ruleset.updates_context:
        return _evaluate_ordered(rules, fact, now, run_actions)
    flags = ruleset.predicates(fact, now)
    first_only = ruleset.mode == "first"
    matches: list[Match] = []
    context: dict[str, Any] | None = None
    for rule, hit in zip(rules, flags, strict=True):
        if not hit:
            continue
        match, updates = _fire(rule, fact, now, run_actions)
        matches.append(match)
        if updates:
            if context is None:
                context = dict(fact)
            context.update(updates)
        if first_only:
            break
    return Outcome(fact, fact if context is None else context, tuple(matches))


def _evaluate_ordered(
    rules: tuple[Rule, ...],
    fact: Mapping[str, Any],
    now: datetime.datetime | None,
    run_actions: bool,
) -> Outcome:
    context = dict(fact)
    matches: list[Match] = []
    for rule in rules:
        if not rule.condition.row_predicate(context, now):
            continue
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
    one compiled call tests every condition, and facts that match nothing cost nothing more.
    """
    if ruleset.mode == "ordered" and ruleset.updates_context:
        return [evaluate_fact(ruleset, fact, now=now, run_actions=run_actions) for fact in facts]
    predicates = ruleset.predicates
    rules = ruleset.active_rules
    first_only = ruleset.mode == "first"
    outcomes: list[Outcome] = []
    append = outcomes.append
    for fact in facts:
        flags = predicates(fact, now)
        if True not in flags:
            append(Outcome(fact, fact, ()))
            continue
        matches: list[Match] = []
        context = None
        for index, hit in enumerate(flags):
            if not hit:
                continue
            rule = rules[index]
            spec = rule.action
            if spec is None or (spec.builtin and not spec.updates_context):
                # The common case, inlined: no handler to call, no context to update.
                params = rule.evaluate_params(fact, now) if rule.params else {}
                matches.append(
                    Match(
                        rule.id,
                        None if spec is None else spec.name,
                        params,
                        None if spec is None else params,
                        rule.priority,
                        rule.tags,
                    )
                )
            else:
                match, updates = _fire(rule, fact, now, run_actions)
                matches.append(match)
                if updates:
                    if context is None:
                        context = dict(fact)
                    context.update(updates)
            if first_only:
                break
        append(Outcome(fact, fact if context is None else context, tuple(matches)))
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
_EVERY_ROW = pl.col("__row").is_not_null()


def _column_of(condition: pl.Expr) -> pl.Expr:
    return (_EVERY_ROW & condition).fill_null(False)


def _values_of(value: pl.Expr) -> pl.Expr:
    return pl.when(_EVERY_ROW).then(value)


_POLARS_TYPES: dict[FieldType, pl.DataType] = {
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
        dtype = _POLARS_TYPES.get(spec.type) if spec is not None else None
        if dtype is not None:
            source = pl.col(name) if present else pl.lit(None)
            columns.append(source.cast(dtype).alias(name))
        elif not present:
            columns.append(pl.lit(None).alias(name))
    return frame.with_columns(columns) if columns else frame


def _param_fields(rule: Rule) -> list[str]:
    names: set[str] = set()
    for value in rule.params.values():
        for expression in value.expressions:
            names |= expression.fields
    return sorted(names)


def _match_rows(
    work: pl.DataFrame,
    mask: pl.Series,
    rule: Rule,
    order: int,
    now: datetime.datetime | None,
) -> pl.DataFrame:
    # Filter only the columns the parameters read, not the whole table.
    columns_needed = ["__row", *(name for name in _param_fields(rule) if name in work.columns)]
    source = work.select(columns_needed).filter(mask)
    columns: list[pl.Expr] = [
        pl.col("__row").alias("row"),
        pl.lit(rule.id, dtype=pl.String).alias("rule_id"),
        pl.lit(rule.action.name if rule.action else None, dtype=pl.String).alias("action"),
        pl.lit(rule.priority, dtype=pl.Int64).alias("priority"),
        pl.lit(order, dtype=pl.Int64).alias("__order"),
    ]
    schema = source.schema
    columns.extend(
        _values_of(value.to_polars(now, schema)).alias(f"__p_{name}")
        for name, value in rule.params.items()
    )
    return source.select(columns)


def _assemble(parts: list[pl.DataFrame], param_names: list[str]) -> pl.DataFrame:
    parts = [part for part in parts if part.height]
    if not parts:
        return _empty_matches(param_names)
    combined = pl.concat(parts, how="diagonal_relaxed").sort(["row", "__order"])
    columns: list[pl.Expr] = [pl.col(name) for name in _MATCH_COLUMNS]
    present = [name for name in param_names if f"__p_{name}" in combined.columns]
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
    except _FRAME_ERRORS as exc:
        raise _frame_error(ruleset, frame, now, exc) from exc


# Errors Polars (or building its expressions) raises for a table the rules cannot use.
_FRAME_ERRORS = (pl.exceptions.PolarsError, ReclaimError, TypeError, ValueError, OverflowError)


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
            except _FRAME_ERRORS as cause:
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
    hit_names = [f"__hit{index}" for index in range(len(rules))]
    # One select computes every condition: Polars runs them in parallel over shared columns.
    schema = work.schema
    hits = work.select(
        _column_of(rule.condition.to_polars_predicate(now=now, schema=schema)).alias(name)
        for rule, name in zip(rules, hit_names, strict=True)
    )
    if ruleset.mode == "first":
        winner = pl.coalesce(
            [
                pl.when(pl.col(name)).then(pl.lit(index, dtype=pl.Int64))
                for index, name in enumerate(hit_names)
            ]
        )
        masks = hits.select(
            (winner == index).fill_null(False).alias(name) for index, name in enumerate(hit_names)
        )
    else:
        masks = hits
    parts: list[pl.DataFrame] = []
    for index, (rule, name) in enumerate(zip(rules, hit_names, strict=True)):
        mask = masks.get_column(name)
        if not mask.any():
            continue
        parts.append(_match_rows(work, mask, rule, index, now))
    return _assemble(parts, param_names)


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
        parts.append(_match_rows(work, hit, rule, index, now))
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
