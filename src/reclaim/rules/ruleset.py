"""A loaded, checked rule set, ready to evaluate: rules, compiled parameters, and results.

Everything here is immutable once loaded. Evaluation itself lives in
:mod:`reclaim.rules.engine`; :class:`RuleSet` methods are the front door to it.
"""

from __future__ import annotations

__all__ = [
    "Match",
    "Outcome",
    "ParamValue",
    "Rule",
    "RuleSet",
]

import datetime
import importlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from reclaim.errors import SourceLocation
from reclaim.rules.actions import ActionSpec
from reclaim.rules.expression import EvaluationError, Expression, FactSchema, compile_predicates
from reclaim.rules.spec import Kind, Mode, RuleTestCase

if TYPE_CHECKING:
    import polars as pl

    from reclaim.rules.explain import Explanation
    from reclaim.rules.testing import RuleTestReport
else:
    from reclaim.rules.expression.lazy import polars as pl

_VERDICT_RANK = {"allow": 0, "warn": 1, "deny": 2}


def format_value(value: Any) -> str:
    """Text of a value inside a template, written the way Polars casts it to a string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ", timespec="microseconds")
    return str(value)


@dataclass(frozen=True, slots=True)
class ParamValue:
    """One compiled parameter value.

    ``kind`` is ``const`` (``value`` as written), ``expr`` (``value`` is an Expression),
    ``template`` (``value`` is a tuple of str and Expression parts), ``list`` or ``map``
    (``value`` holds ParamValues, keyed for maps).
    """

    kind: Literal["const", "expr", "template", "list", "map"]
    value: Any

    def evaluate(self, fact: Mapping[str, Any], now: datetime.datetime | None) -> Any:
        """The value of this parameter for one fact."""
        kind = self.kind
        if kind == "const":
            return self.value
        if kind == "expr":
            return self.value.evaluate(fact, now=now)
        if kind == "template":
            pieces: list[str] = []
            for part in self.value:
                if isinstance(part, str):
                    pieces.append(part)
                    continue
                result = part.evaluate(fact, now=now)
                if result is None:
                    return None
                pieces.append(format_value(result))
            return "".join(pieces)
        if kind == "list":
            return [item.evaluate(fact, now) for item in self.value]
        return {key: item.evaluate(fact, now) for key, item in self.value}

    def to_polars(
        self, now: datetime.datetime | None, schema: Mapping[str, pl.DataType] | None = None
    ) -> pl.Expr:
        """The same value as a Polars expression over a frame of facts with ``schema``."""
        kind = self.kind
        if kind == "const":
            if isinstance(self.value, list | dict):
                return pl.lit(pl.Series([self.value])).first()
            return pl.lit(self.value)
        if kind == "expr":
            expression: pl.Expr = self.value.to_polars(now=now, schema=schema)
            return expression
        if kind == "template":
            parts = [
                pl.lit(part)
                if isinstance(part, str)
                else _polars_text(part.to_polars(now=now, schema=schema))
                for part in self.value
            ]
            return pl.concat_str(parts) if len(parts) > 1 else parts[0]
        if kind == "list":
            return pl.concat_list([item.to_polars(now, schema) for item in self.value])
        return pl.struct([item.to_polars(now, schema).alias(key) for key, item in self.value])

    @property
    def expressions(self) -> list[Expression]:
        """Every expression inside this value."""
        if self.kind == "expr":
            return [self.value]
        if self.kind == "template":
            return [part for part in self.value if not isinstance(part, str)]
        if self.kind == "list":
            return [e for item in self.value for e in item.expressions]
        if self.kind == "map":
            return [e for _, item in self.value for e in item.expressions]
        return []


def _polars_text(expression: pl.Expr) -> pl.Expr:
    return expression.cast(pl.String)


@dataclass(frozen=True, eq=False)
class Rule:
    """One checked rule. ``index`` is its position in the file (0-based)."""

    id: str
    condition: Expression
    action: ActionSpec | None
    params: Mapping[str, ParamValue]
    index: int
    description: str = ""
    priority: int = 0
    tags: tuple[str, ...] = ()
    enabled: bool = True
    location: SourceLocation | None = None

    @cached_property
    def _param_plan(self) -> tuple[tuple[str, int, Any], ...]:
        # Constants are taken as they are and single expressions called directly; only
        # templates, lists and maps go through ParamValue. This is the per-match hot path.
        plan: list[tuple[str, int, Any]] = []
        for name, value in self.params.items():
            if value.kind == "const":
                plan.append((name, 0, value.value))
            elif value.kind == "expr":
                plan.append((name, 1, value.value))
            else:
                plan.append((name, 2, value))
        return tuple(plan)

    def evaluate_params(
        self, fact: Mapping[str, Any], now: datetime.datetime | None = None
    ) -> dict[str, Any]:
        """The rule's parameters evaluated for one fact, in the order they were written."""
        values: dict[str, Any] = {}
        for name, how, item in self._param_plan:
            if how == 0:
                values[name] = item
            elif how == 1:
                values[name] = item.evaluate(fact, now=now)
            else:
                values[name] = item.evaluate(fact, now)
        return values


@dataclass(slots=True)
class Match:
    """A rule that fired for a fact: its evaluated parameters and the action's result.

    Treat as read-only (it is not frozen only because frozen dataclasses are slow to build,
    and one is built per match).
    """

    rule_id: str
    action: str | None
    params: Mapping[str, Any]
    result: Any = None
    priority: int = 0
    tags: tuple[str, ...] = ()


@dataclass(slots=True)
class Outcome:
    """What a rule set decided for one fact.

    ``matches`` are in evaluation order (see :class:`RuleSet`); ``context`` is the fact after
    every context-updating action (``set``) ran.
    """

    fact: Mapping[str, Any]
    context: Mapping[str, Any]
    matches: tuple[Match, ...]

    @property
    def fired(self) -> list[str]:
        """Ids of the rules that fired, in evaluation order."""
        return [match.rule_id for match in self.matches]

    @property
    def verdict(self) -> str | None:
        """The strictest ``verdict`` decision among the matches (deny > warn > allow)."""
        decisions = [
            match.params.get("decision")
            for match in self.matches
            if match.action == "verdict" and match.params.get("decision") in _VERDICT_RANK
        ]
        if not decisions:
            return None
        return max(decisions, key=lambda decision: _VERDICT_RANK[str(decision)])

    def of_action(self, *names: str) -> list[Match]:
        """The matches whose action is one of ``names``."""
        return [match for match in self.matches if match.action in names]


@dataclass(frozen=True, eq=False)
class RuleSet:
    """A checked rule set. Load one with :func:`reclaim.rules.load_rules`.

    Evaluation order: in modes ``all`` and ``first``, rules are tried by ``priority`` (higher
    first), ties in file order; ``first`` keeps only the first match. In mode ``ordered`` every
    rule runs in file order and each sees the fields earlier actions set.
    """

    name: str
    kind: Kind
    mode: Mode
    rules: tuple[Rule, ...]
    vars: Mapping[str, Any] = field(default_factory=dict)
    schema: FactSchema | None = None
    description: str = ""
    path: str | None = None
    tests: tuple[RuleTestCase, ...] = ()

    @cached_property
    def active_rules(self) -> tuple[Rule, ...]:
        """Enabled rules in evaluation order (see the class doc)."""
        enabled = [rule for rule in self.rules if rule.enabled]
        if self.mode == "ordered":
            return tuple(enabled)
        return tuple(sorted(enabled, key=lambda rule: (-rule.priority, rule.index)))

    @cached_property
    def predicates(self) -> Callable[..., list[bool]]:
        """``f(fact, now) -> list[bool]``: every active rule's condition tested in one call."""
        return compile_predicates(
            [rule.condition for rule in self.active_rules], locate=self._locate_error
        )

    @cached_property
    def predicate_mask(self) -> Callable[..., int]:
        """``f(fact, now) -> int``: every active rule's condition in one call, bit i set when
        rule i of :attr:`active_rules` matches (what the row evaluator runs)."""
        return compile_predicates(
            [rule.condition for rule in self.active_rules],
            as_mask=True,
            locate=self._locate_error,
        )

    def _locate_error(self, fact: Mapping[str, Any], now: datetime.datetime | None) -> None:
        # Called only once the compiled call has failed: find the rule and name it.
        for rule in self.active_rules:
            try:
                rule.condition.row_predicate(fact, now)
            except EvaluationError as exc:
                raise rule_error(rule, exc) from exc

    @cached_property
    def static_matches(self) -> tuple[Match | None, ...]:
        """Per active rule, the one Match it always gives when it fires, or None when its
        match depends on the fact (a parameter is an expression or template) or calls code.

        Such a Match (and its ``params``) is shared by every outcome the rule fires in; like
        every Match, treat it as read-only.
        """
        shared: list[Match | None] = []
        for rule in self.active_rules:
            spec = rule.action
            static = all(value.kind == "const" for value in rule.params.values()) and (
                spec is None or (spec.builtin and not spec.updates_context)
            )
            if not static:
                shared.append(None)
                continue
            params = {name: value.value for name, value in rule.params.items()}
            shared.append(
                Match(
                    rule.id,
                    None if spec is None else spec.name,
                    params,
                    None if spec is None else params,
                    rule.priority,
                    rule.tags,
                )
            )
        return tuple(shared)

    @cached_property
    def match_plans(self) -> dict[int, tuple[Match, ...]]:
        """Matches by the bit mask of the rules that fired, filled as masks are met, for masks
        whose every match is static: a fact then costs one compiled call and one lookup."""
        return {}

    @cached_property
    def frame_plans(self) -> dict[Any, tuple[list[pl.Expr], list[list[pl.Expr]], bool]]:
        """The columnar evaluator's compiled Polars expressions, by frame schema."""
        return {}

    @cached_property
    def uses_now(self) -> bool:
        """Whether any condition or parameter reads the evaluation time."""
        return any(
            expression.uses_now
            for rule in self.rules
            for expression in (
                rule.condition,
                *(e for value in rule.params.values() for e in value.expressions),
            )
        )

    @cached_property
    def updates_context(self) -> bool:
        """Whether any active rule's action writes to the context (``set`` and the like)."""
        return any(rule.action is not None and rule.action.updates_context for rule in self.rules)

    @cached_property
    def fields(self) -> frozenset[str]:
        """Top-level fact fields read by any condition or parameter."""
        names: set[str] = set()
        for rule in self.rules:
            names |= rule.condition.fields
            for value in rule.params.values():
                for expression in value.expressions:
                    names |= expression.fields
        return frozenset(names)

    def rule(self, rule_id: str) -> Rule:
        """The rule named ``rule_id``; KeyError if there is none."""
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    def evaluate(
        self,
        fact: Mapping[str, Any],
        *,
        now: datetime.datetime | None = None,
        run_actions: bool = True,
    ) -> Outcome:
        """Evaluate one fact. With ``run_actions=False`` impure (host) actions are not called."""
        outcome: Outcome = _engine().evaluate_fact(self, fact, now=now, run_actions=run_actions)
        return outcome

    def evaluate_many(
        self,
        facts: Iterable[Mapping[str, Any]],
        *,
        now: datetime.datetime | None = None,
        run_actions: bool = True,
    ) -> list[Outcome]:
        """Evaluate many facts one by one (the row evaluator)."""
        outcomes: list[Outcome] = _engine().evaluate_facts(
            self, facts, now=now, run_actions=run_actions
        )
        return outcomes

    def evaluate_frame(
        self, frame: pl.DataFrame, *, now: datetime.datetime | None = None
    ) -> pl.DataFrame:
        """Evaluate a table of facts column-wise (the columnar evaluator).

        Returns one row per match: ``row`` (index of the fact), ``rule_id``, ``action``,
        ``priority`` and ``params`` (a struct of every parameter name used in the rule set;
        null where a rule has no such parameter). Host (impure) actions are not called.
        """
        matches: pl.DataFrame = _engine().evaluate_frame(self, frame, now=now)
        return matches

    def explain(
        self,
        fact: Mapping[str, Any],
        *,
        now: datetime.datetime | None = None,
        rule_ids: Sequence[str] | None = None,
    ) -> Explanation:
        """Why each rule fired or not for ``fact`` (see :mod:`reclaim.rules.explain`)."""
        from reclaim.rules.explain import explain

        return explain(self, fact, now=now, rule_ids=rule_ids)

    def run_tests(self) -> RuleTestReport:
        """Run the tests kept in the rule file (see :mod:`reclaim.rules.testing`)."""
        from reclaim.rules.testing import run_tests

        return run_tests(self, self.tests, source=self.path or self.name)


def rule_error(rule: Rule, exc: EvaluationError) -> EvaluationError:
    """``exc`` (raised evaluating ``rule`` for a fact) naming the rule and where it is."""
    return EvaluationError(f"rule {rule.id!r}: {exc.message}", location=rule.location, fix=exc.fix)


_engine_module: Any = None


def _engine() -> Any:
    """:mod:`reclaim.rules.engine`, which imports this module: imported on first use, then
    kept here (an import statement per ``evaluate`` call cost a microsecond).

    Not read from ``sys.modules``: a module appears there as soon as its import *starts*, so a
    second thread evaluating for the first time would get it half-initialized.
    ``import_module`` waits for an import another thread has under way.
    """
    global _engine_module
    if _engine_module is None:
        _engine_module = importlib.import_module("reclaim.rules.engine")
    return _engine_module
