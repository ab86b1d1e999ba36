"""``compile_expression``: source → checked tree → compiled evaluators, and ``Expression``."""

from __future__ import annotations

__all__ = ["Expression", "compile_expression", "compile_predicates"]

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from reclaim.errors import SourceLocation
from reclaim.rules.expression.explain import ExplainNode, explain_node
from reclaim.rules.expression.limits import DEFAULT_LIMITS, Limits
from reclaim.rules.expression.nodes import Call, Const, Field, Node, children
from reclaim.rules.expression.parser import TreeSummary, parse_summarized
from reclaim.rules.expression.row import RowFunction, compile_row
from reclaim.rules.expression.runtime import normalize_now
from reclaim.rules.expression.types import FactSchema, FieldType

if TYPE_CHECKING:
    import polars as pl


class Expression:
    """A checked, compiled expression. Immutable; safe to share between threads.

    ``evaluate`` returns the value (None for null); ``matches`` is the predicate (null → False);
    ``row_predicate(fact, now=None)`` is the raw compiled predicate for hot loops;
    ``to_polars`` gives the same semantics column-wise; ``explain`` shows why.
    """

    __slots__ = (
        "_row_predicate",
        "_value_function",
        "cost",
        "fields",
        "location",
        "result_type",
        "schema",
        "source",
        "tree",
        "uses_now",
    )

    def __init__(
        self,
        source: str,
        tree: Node,
        *,
        schema: FactSchema | None,
        location: SourceLocation | None,
        summary: TreeSummary | None = None,
    ) -> None:
        self.source = source
        self.tree = tree
        self.schema = schema
        self.location = location
        self.result_type: FieldType = tree.type
        if summary is None:
            summary = summarize(tree)
        self.fields: frozenset[str] = summary.fields
        self.uses_now = summary.uses_now
        #: (syntax nodes, characters and items of constants): what it counts against the
        #: per-file limits.
        self.cost: tuple[int, int] = (summary.nodes, summary.constant_items)
        self._row_predicate: RowFunction | None = None
        self._value_function: RowFunction | None = None

    @property
    def row_predicate(self) -> RowFunction:
        """The compiled predicate ``f(fact, now=None) -> bool`` (compiled on first use)."""
        function = self._row_predicate
        if function is None:
            function = compile_row([self.tree], mode="truth", sources=[self.source]).function
            self._row_predicate = function
        return function

    def evaluate(self, fact: Mapping[str, Any], *, now: datetime | None = None) -> Any:
        """The value of the expression for ``fact``; None means null."""
        function = self._value_function
        if function is None:
            function = compile_row([self.tree], mode="value", sources=[self.source]).function
            self._value_function = function
        return function(fact, now)

    def matches(self, fact: Mapping[str, Any], *, now: datetime | None = None) -> bool:
        """Whether the expression is true for ``fact`` (null and false do not match)."""
        result: bool = self.row_predicate(fact, now)
        return result

    def to_polars(
        self,
        *,
        now: datetime | None = None,
        schema: Mapping[str, pl.DataType] | None = None,
    ) -> pl.Expr:
        """The expression as a Polars expression over a frame of facts, null where null.

        ``schema`` (e.g. ``frame.schema``) lets fields absent from the frame, or from a struct
        column, evaluate to null, and gives fields typed ``any`` their column's type. Use
        ``frame.filter(expr)`` to keep matching facts (null rows are dropped).
        """
        # Imported here: Polars is loaded on the first columnar use, not with the rules engine.
        import polars as pl

        from reclaim.rules.expression.columnar import compile_columnar

        expr = compile_columnar(self.tree, now=normalize_now(now), schema=schema)
        # A condition is always a Boolean column, even when it folds to a null literal, so
        # that frame.filter() accepts it.
        return expr.cast(pl.Boolean) if self.result_type is FieldType.BOOLEAN else expr

    def to_polars_predicate(
        self,
        *,
        now: datetime | None = None,
        schema: Mapping[str, pl.DataType] | None = None,
    ) -> pl.Expr:
        """The expression as a condition over a frame: a Boolean column, true exactly where
        ``matches`` is true for that row's fact, false or null elsewhere.

        Unlike ``to_polars``, a value that is not a boolean counts by its truthiness (a bare
        ``invoice_number`` is true where the text is not empty), as in the row evaluator.
        """
        from reclaim.rules.expression.columnar import compile_columnar

        return compile_columnar(self.tree, now=normalize_now(now), schema=schema, predicate=True)

    def explain(self, fact: Mapping[str, Any], *, now: datetime | None = None) -> ExplainNode:
        """Every sub-expression's value for ``fact``, as a tree; ``render()`` prints it."""
        return explain_node(self.tree, fact, normalize_now(now))

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


def compile_expression(
    source: str,
    *,
    schema: FactSchema | None = None,
    constants: Mapping[str, Any] | None = None,
    location: SourceLocation | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Expression:
    """Check and compile ``source``.

    ``schema`` declares the facts' fields (None: any field allowed, typed ``any``);
    ``constants`` are names resolved at compile time (a rule set's ``vars``) and win over
    fields of the same name; ``location`` is where ``source`` starts in its file, so errors
    point into that file. Raises ExpressionError before any fact is evaluated.
    """
    tree, summary = parse_summarized(
        source, schema=schema, constants=constants, location=location, limits=limits
    )
    return Expression(source, tree, schema=schema, location=location, summary=summary)


def summarize(tree: Node) -> TreeSummary:
    """The :class:`TreeSummary` of a checked tree built elsewhere than by the parser."""
    nodes = items = 0
    fields: set[str] = set()
    uses_now = False
    stack = [tree]
    while stack:
        node = stack.pop()
        nodes += 1
        if isinstance(node, Const) and isinstance(node.value, str | list | tuple | Mapping):
            items += len(node.value)
        if isinstance(node, Field):
            fields.add(node.name)
        if isinstance(node, Call) and node.name in ("now", "days_since"):
            uses_now = True
        stack.extend(children(node))
    return TreeSummary(nodes, items, frozenset(fields), uses_now)


def compile_predicates(
    exprs: Sequence[Expression],
    *,
    as_mask: bool = False,
    locate: Callable[[Mapping[str, Any], datetime | None], None] | None = None,
) -> Callable[..., Any]:
    """One compiled function ``f(fact, now=None) -> list[bool]`` testing every expression.

    The fast path for "all rules per fact": each fact field is fetched once for all rules and
    there is one Python call per fact, not one per rule. Element i is ``exprs[i].matches``.
    With ``as_mask=True`` the function returns an int instead, bit i set for ``exprs[i]``.
    When a fact cannot be evaluated, ``locate(fact, now)`` is called to raise the error
    (default: each expression is run alone, so the error names the one that failed).
    """
    expressions = list(exprs)

    def run_each(fact: Mapping[str, Any], now: datetime | None) -> None:
        for expression in expressions:
            expression.row_predicate(fact, now)

    program = compile_row(
        [expression.tree for expression in expressions],
        mode="mask" if as_mask else "truths",
        sources=[expression.source for expression in expressions],
        locate=locate or run_each,
    )
    function: Callable[..., Any] = program.function
    return function
