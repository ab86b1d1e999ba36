"""The row evaluator: the checked tree compiled to one Python function per use.

We build a Python ``ast`` tree OF OUR OWN from the checked tree and ``compile()`` it into a code
object, then wrap it with ``types.FunctionType``. No user text is ever compiled or evaluated:
the user's text was parsed into our checked tree (parser.py) and discarded; the code generated
here contains only our own node types, names we choose, and constants taken from the checked
tree as values (``ast.Constant``), never as source text. Values that cannot be literal constants
(lists, datetimes, compiled regexes, helper functions) are bound as the generated function's
globals (with empty builtins), which CPython loads through a per-instruction cache.

Speed: every fact field the expressions read is fetched once into a local. Predicates are
compiled in "truth" form (true exactly when the three-valued result is true), so a null operand
costs one ``is not None`` test and ``and``/``or`` short-circuit as in hand-written Python. The
full three-valued value is only computed where it is observable (``evaluate``, operands of
``==`` between booleans, and the like).
"""

from __future__ import annotations

__all__ = ["RowProgram", "compile_row"]

import ast
import threading
import types
import warnings
from collections.abc import Callable, Hashable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from reclaim.rules.expression import runtime
from reclaim.rules.expression.errors import EvaluationError
from reclaim.rules.expression.functions import FUNCTIONS
from reclaim.rules.expression.memory import collection_paused
from reclaim.rules.expression.nodes import (
    BinOp,
    BoolOp,
    Call,
    Compare,
    Const,
    Field,
    IfElse,
    ListLit,
    Member,
    Node,
    UnaryOp,
    children,
)
from reclaim.rules.expression.regex import compile_regex
from reclaim.rules.expression.types import NUMERIC, FieldType

T = FieldType


_N = TypeVar("_N", bound=ast.AST)


def _positioned(cls: type[_N]) -> type[_N]:
    """``cls`` with line 1, column 0 as class attributes: compile() needs a position on every
    statement and expression, and ours are all generated. Set per class, not per node: a walk
    setting them on each node of a 2,000-rule function was a fifth of compiling it. The class
    keeps its name, so ``ast.unparse`` reads the tree as usual."""
    return type(
        cls.__name__,
        (cls,),
        {"lineno": 1, "col_offset": 0, "end_lineno": 1, "end_col_offset": 0},
    )


_Assign = _positioned(ast.Assign)
_Attribute = _positioned(ast.Attribute)
_BinOp = _positioned(ast.BinOp)
_BoolOp = _positioned(ast.BoolOp)
_Call = _positioned(ast.Call)
_Compare = _positioned(ast.Compare)
_Constant = _positioned(ast.Constant)
_ExceptHandler = _positioned(ast.ExceptHandler)
_FunctionDef = _positioned(ast.FunctionDef)
_IfExp = _positioned(ast.IfExp)
_List = _positioned(ast.List)
_Name = _positioned(ast.Name)
_NamedExpr = _positioned(ast.NamedExpr)
_Pass = _positioned(ast.Pass)
_Raise = _positioned(ast.Raise)
_Return = _positioned(ast.Return)
_Subscript = _positioned(ast.Subscript)
_Try = _positioned(ast.Try)
_Tuple = _positioned(ast.Tuple)
_UnaryOp = _positioned(ast.UnaryOp)
_arg = _positioned(ast.arg)
# Contexts and operators carry no state: one instance of each serves every node.
_LOAD = ast.Load()
_STORE = ast.Store()
_AND = ast.And()
_OR = ast.Or()
_NOT = ast.Not()
_NEGATIVE = ast.USub()
_IS = ast.Is()
_IS_NOT = ast.IsNot()
_EQ = ast.Eq()
_LSHIFT = ast.LShift()
_BIT_OR = ast.BitOr()
_SIMPLE_CONSTANTS = (bool, int, float, str)

_CMP_AST: dict[str, type[ast.cmpop]] = {
    "==": ast.Eq,
    "!=": ast.NotEq,
    "<": ast.Lt,
    "<=": ast.LtE,
    ">": ast.Gt,
    ">=": ast.GtE,
    "in": ast.In,
    "not in": ast.NotIn,
}
_BIN_AST: dict[str, type[ast.operator]] = {
    "+": ast.Add,
    "-": ast.Sub,
    "*": ast.Mult,
    "/": ast.Div,
    "//": ast.FloorDiv,
    "%": ast.Mod,
}
_HELPERS: dict[str, Callable[..., Any]] = {
    "_truthy": runtime.truthy,
    "_and3": runtime.and3,
    "_or3": runtime.or3,
    "_not3": runtime.not3,
    "_member": runtime.member,
    "_index": runtime.index,
    "_mul": runtime.mul,
    "_div": runtime.div,
    "_floordiv": runtime.floordiv,
    "_mod": runtime.mod,
    "_power": runtime.power,
    "_int64": runtime.int64,
    "_as_utc": runtime.as_utc,
    "_normalize_now": runtime.normalize_now,
}
_CMP_OPS: dict[str, ast.cmpop] = {op: kind() for op, kind in _CMP_AST.items()}
_BIN_OPS: dict[str, ast.operator] = {op: kind() for op, kind in _BIN_AST.items()}
_DIVISIONS = {"/": "_div", "//": "_floordiv", "%": "_mod"}
_ORDERING = frozenset({"<", "<=", ">", ">="})
# Exceptions Python raises when a fact's value has a type the schema did not promise.
_RUNTIME_ERRORS = (TypeError, AttributeError, ValueError, OverflowError, KeyError, IndexError)

RowFunction = Callable[..., Any]


class RowProgram:
    """A compiled function ``f(fact, now=None)`` and the code it came from."""

    __slots__ = ("_checked", "definition", "function", "parts", "uses_now")

    def __init__(
        self,
        function: RowFunction,
        definition: ast.FunctionDef,
        checked: Callable[[], ast.FunctionDef | None] | None = None,
        *,
        uses_now: bool = False,
        parts: Sequence[RowProgram] = (),
    ) -> None:
        self.function = function
        self.definition = definition
        self._checked = checked
        #: Whether the code reads the evaluation time.
        self.uses_now = uses_now
        #: The programs this one calls, one per group of rules (a large mask only).
        self.parts = tuple(parts)

    @property
    def python_source(self) -> str:
        """The generated code, for debugging and tests (``ast.unparse`` of our own tree):
        the function, then the checked function its fallback calls, if it has one (compiled
        here if no fact needed it yet), then the code of its parts."""
        text = ast.unparse(self.definition)
        checked = self._checked() if self._checked is not None else None
        if checked is not None:
            text += "\n\n" + ast.unparse(checked)
        return "\n\n".join([text, *(part.python_source for part in self.parts)])


def _name(identifier: str) -> ast.Name:
    return _Name(id=identifier, ctx=_LOAD)


def _const(value: Any) -> ast.Constant:
    if value is None:
        return _NONE
    if value is True:
        return _TRUE
    if value is False:
        return _FALSE
    return _Constant(value=value)


# compile() only reads the tree it is given, so a leaf may appear in it any number of times:
# shared, these are built once rather than at every use (a 2,000-rule function has
# thousands of each).
_NONE = _Constant(value=None)
_TRUE = _Constant(value=True)
_FALSE = _Constant(value=False)
_FACT = _Name(id="fact", ctx=_LOAD)
_NOW = _Name(id="now", ctx=_LOAD)


def _is(expr: ast.expr, singleton: bool | None, *, negate: bool = False) -> ast.expr:
    # A literal on the left of "is" is decided here: CPython warns about "1 is None".
    if isinstance(expr, ast.Constant):
        return _const((expr.value is singleton) != negate)
    op: ast.cmpop = _IS_NOT if negate else _IS
    return _Compare(left=expr, ops=[op], comparators=[_const(singleton)])


def _is_none(expr: ast.expr) -> ast.expr:
    return _is(expr, None)


def _is_not_none(expr: ast.expr) -> ast.expr:
    return _is(expr, None, negate=True)


def _and(*values: ast.expr) -> ast.expr:
    flat = [value for value in values if not (isinstance(value, ast.Constant) and value.value)]
    if not flat:
        return _const(True)
    if len(flat) == 1:
        return flat[0]
    return _BoolOp(op=_AND, values=flat)


def _or(*values: ast.expr) -> ast.expr:
    return values[0] if len(values) == 1 else _BoolOp(op=_OR, values=list(values))


def _not(value: ast.expr) -> ast.expr:
    return _UnaryOp(op=_NOT, operand=value)


def _call(function: ast.expr, *args: ast.expr) -> ast.expr:
    return _Call(func=function, args=list(args), keywords=[])


def _never_null(node: Node) -> bool:
    return isinstance(node, Const) and node.value is not None


class _Generator:
    """Builds expression trees for one generated function; shares field locals across rules."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        # The optimistic code's fact[name] of each field, one node for every use.
        self.reads: dict[str, ast.expr] = {}
        self.bound: dict[str, Any] = {}
        self.bound_ids: dict[int, str] = {}
        self.temps = 0
        self.uses_now = False
        self.reads_fields = False
        # Optimistic code leaves out null tests wherever a null operand makes Python raise
        # TypeError (None < 1, None + 1, -None) instead of giving a wrong answer; the caller
        # runs it first and falls back to the fully checked code when TypeError is raised.
        self.optimistic = False
        # Whether the optimistic code reads every field into a local before it tests any
        # rule, rather than where each is used: a large mask's groups do, as a local per
        # field instead of a fact[name] per use is a third less code for CPython to compile
        # (and a faster evaluation); a fact lacking a field that any rule of the group reads
        # then takes the checked code, whose answers are the same.
        self.read_first = False

    # --- names ---

    def field(self, name: str) -> ast.expr:
        self.reads_fields = True
        if self.optimistic and not self.read_first:
            # Read where used, so a short-circuited condition reads nothing; a missing field
            # raises KeyError and the checked code (fields read with .get) takes over.
            read = self.reads.get(name)
            if read is None:
                read = self.reads[name] = _Subscript(value=_FACT, slice=_const(name), ctx=_LOAD)
            return read
        local = self.fields.get(name)
        if local is None:
            local = f"f{len(self.fields)}"
            self.fields[name] = local
        return _name(local)

    def bind(self, value: Any, prefix: str = "_k") -> ast.Name:
        known = self.bound_ids.get(id(value))
        if known is not None:
            return _name(known)
        name = f"{prefix}{len(self.bound)}"
        self.bound[name] = value
        self.bound_ids[id(value)] = name
        return _name(name)

    def helper(self, name: str) -> ast.Name:
        self.bound.setdefault(name, _HELPERS[name])
        return _name(name)

    def temp(self, expr: ast.expr) -> tuple[ast.expr, ast.expr]:
        """(first use that evaluates ``expr``, later uses); simple expressions need no temp."""
        if isinstance(expr, ast.Name | ast.Constant):
            return expr, expr
        self.temps += 1
        name = f"t{self.temps}"
        return _NamedExpr(target=_Name(id=name, ctx=_STORE), value=expr), _name(name)

    # --- value form: the full three-valued result (None = null) ---

    def value(self, node: Node) -> ast.expr:
        if isinstance(node, Const):
            if node.value is None or type(node.value) in _SIMPLE_CONSTANTS:
                return _const(node.value)
            return self.bind(node.value)
        if isinstance(node, Field):
            return self.field(node.name)
        if isinstance(node, Member):
            return self.member(node)
        if isinstance(node, UnaryOp):
            if node.op == "not":
                return _call(self.helper("_not3"), self.bool3(node.operand))
            if node.op == "+":
                return self.value(node.operand)
            if self.optimistic:
                negative = _UnaryOp(op=_NEGATIVE, operand=self.value(node.operand))
                return self.bounded(node, negative)
            first, later = self.temp(self.value(node.operand))
            negated = self.bounded(node, _UnaryOp(op=_NEGATIVE, operand=later))
            return _IfExp(test=_is_none(first), body=_const(None), orelse=negated)
        if isinstance(node, BinOp):
            return self.binop(node)
        if isinstance(node, Compare):
            return self.compare_value(node)
        if isinstance(node, BoolOp):
            helper = "_and3" if node.op == "and" else "_or3"
            return _call(self.helper(helper), *(self.bool3(op) for op in node.operands))
        if isinstance(node, IfElse):
            return _IfExp(
                test=self.truth(node.test),
                body=self.value(node.body),
                orelse=self.value(node.orelse),
            )
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, ListLit):
            return _List(elts=[self.value(item) for item in node.items], ctx=_LOAD)
        raise AssertionError(f"unknown node {node!r}")

    def bool3(self, node: Node) -> ast.expr:
        """The operand of and/or/not as True, False or None (truthiness of non-booleans)."""
        if node.type is T.BOOLEAN:
            return self.value(node)
        return _call(self.helper("_truthy"), self.value(node))

    def member(self, node: Member) -> ast.expr:
        obj = self.value(node.obj)
        if node.obj.type is T.MAP and isinstance(node.key, str):
            first, later = self.temp(obj)
            get = _call(_Attribute(value=later, attr="get", ctx=_LOAD), _const(node.key))
            return _IfExp(test=_is_none(first), body=_const(None), orelse=get)
        if node.obj.type is T.LIST and isinstance(node.key, int):
            return _call(self.helper("_index"), obj, _const(node.key))
        return _call(self.helper("_member"), obj, _const(node.key))

    def null_guarded(
        self, operands: Sequence[Node], build: Callable[[list[ast.expr]], ast.expr]
    ) -> ast.expr:
        """``None if any operand is None else build(operands)``, testing only nullable ones."""
        if self.optimistic:
            return build([self.value(operand) for operand in operands])
        checks: list[ast.expr] = []
        refs: list[ast.expr] = []
        for operand in operands:
            expr = self.value(operand)
            if _never_null(operand):
                refs.append(expr)
                continue
            first, later = self.temp(expr)
            checks.append(_is_none(first))
            refs.append(later)
        if not checks:
            return build(refs)
        return _IfExp(test=_or(*checks), body=_const(None), orelse=build(refs))

    def bounded(self, node: Node, expr: ast.expr) -> ast.expr:
        """``expr`` nulled outside 64 bits when ``node`` may compute an integer."""
        operands = [child.type for child in children(node)]
        if all(kind in (T.INTEGER, T.ANY) for kind in operands):
            return _call(self.helper("_int64"), expr)
        return expr

    def binop(self, node: BinOp) -> ast.expr:
        if node.op == "**":
            assert isinstance(node.right, Const)
            return _call(self.helper("_power"), self.value(node.left), _const(node.right.value))
        numeric = node.left.type in NUMERIC and node.right.type in NUMERIC
        # Inline only integer division by a non-zero constant (neither -1, whose quotient can
        # leave 64 bits): with floats the helpers floor as Polars does, and with an undeclared
        # type "%" on a string from the data would be printf formatting ('%0999999999d').
        if node.op in _DIVISIONS and not (
            isinstance(node.right, Const)
            and type(node.right.value) is int
            and node.right.value not in (0, -1)
            and node.left.type is T.INTEGER
        ):
            return _call(
                self.helper(_DIVISIONS[node.op]), self.value(node.left), self.value(node.right)
            )
        if node.op == "*" and not numeric:
            return _call(self.helper("_mul"), self.value(node.left), self.value(node.right))
        op = _BIN_OPS[node.op]
        return self.null_guarded(
            (node.left, node.right),
            lambda r: (
                self.bounded(node, _BinOp(left=r[0], op=op, right=r[1]))
                if node.op in ("+", "-", "*")
                else _BinOp(left=r[0], op=op, right=r[1])
            ),
        )

    def compare_operands(self, node: Compare) -> tuple[ast.expr, ast.expr]:
        left = self.value(node.left)
        right = self.value(node.right)
        if T.DATETIME in (node.left.type, node.right.type) and node.op not in ("in", "not in"):
            # Naive datetimes are UTC: compare instants, as the columnar evaluator does.
            left = _call(self.helper("_as_utc"), left)
            right = _call(self.helper("_as_utc"), right)
        return left, right

    def member_set(self, node: Node) -> ast.expr | None:
        """A constant list on the right of ``in`` as a frozenset constant (nulls dropped:
        a non-null value never equals null, and a null value gives null anyway)."""
        if not (isinstance(node, Const) and isinstance(node.value, list | tuple)):
            return None
        items = [item for item in node.value if item is not None]
        if all(isinstance(item, Hashable) and type(item) in _SIMPLE_CONSTANTS for item in items):
            return _const(frozenset(items))
        return self.bind(tuple(items))

    def compare_value(self, node: Compare) -> ast.expr:
        if node.op in ("is", "is not"):
            expr = self.value(node.left)
            return _is_none(expr) if node.op == "is" else _is_not_none(expr)
        members = self.member_set(node.right) if node.op in ("in", "not in") else None
        if members is not None:
            left = self.value(node.left)
            first, later = self.temp(left)
            test = _Compare(left=later, ops=[_CMP_OPS[node.op]], comparators=[members])
            return _IfExp(test=_is_none(first), body=_const(None), orelse=test)
        left, right = self.compare_operands(node)
        refs: list[ast.expr] = []
        checks: list[ast.expr] = []
        for operand, expr in ((node.left, left), (node.right, right)):
            if _never_null(operand):
                refs.append(expr)
                continue
            first, later = self.temp(expr)
            checks.append(_is_none(first))
            refs.append(later)
        test = _Compare(left=refs[0], ops=[_CMP_OPS[node.op]], comparators=[refs[1]])
        if not checks:
            return test
        return _IfExp(test=_or(*checks), body=_const(None), orelse=test)

    def call(self, node: Call) -> ast.expr:
        spec = FUNCTIONS[node.name]
        if node.name == "now":
            self.uses_now = True
            return _NOW
        if node.name == "matches":
            pattern = node.args[1]
            assert isinstance(pattern, Const)
            regex = self.bind(compile_regex(pattern.value), "_re")
            first, later = self.temp(self.value(node.args[0]))
            search = _call(_Attribute(value=regex, attr="search", ctx=_LOAD), later)
            return _IfExp(test=_is_none(first), body=_const(None), orelse=_is_not_none(search))
        function = self.bind(spec.row, "_fn")
        args = [self.value(arg) for arg in node.args]
        if spec.needs_now:
            self.uses_now = True
            args.insert(0, _NOW)
        return _call(function, *args)

    # --- truth form: True exactly when the value is True; falsity: exactly when False ---

    def truth(self, node: Node) -> ast.expr:
        if isinstance(node, Const):
            return _const(bool(node.value) if node.value is not None else False)
        if isinstance(node, BoolOp):
            parts = [self.truth(operand) for operand in node.operands]
            return _and(*parts) if node.op == "and" else _or(*parts)
        if isinstance(node, UnaryOp) and node.op == "not":
            return self.falsity(node.operand)
        if isinstance(node, IfElse):
            return _IfExp(
                test=self.truth(node.test),
                body=self.truth(node.body),
                orelse=self.truth(node.orelse),
            )
        if isinstance(node, Compare):
            return self.compare_truth(node, negate=False)
        value = self.value(node)
        if node.type is T.BOOLEAN:
            return _is(value, True)
        return _not(_not(value))

    def falsity(self, node: Node) -> ast.expr:
        if isinstance(node, Const):
            return _const(node.value is not None and not node.value)
        if isinstance(node, BoolOp):
            parts = [self.falsity(operand) for operand in node.operands]
            return _or(*parts) if node.op == "and" else _and(*parts)
        if isinstance(node, UnaryOp) and node.op == "not":
            return self.truth(node.operand)
        if isinstance(node, IfElse):
            return _IfExp(
                test=self.truth(node.test),
                body=self.falsity(node.body),
                orelse=self.falsity(node.orelse),
            )
        if isinstance(node, Compare):
            return self.compare_truth(node, negate=True)
        value = self.value(node)
        if node.type is T.BOOLEAN:
            return _is(value, False)
        first, later = self.temp(value)
        return _and(_is_not_none(first), _not(later))

    def compare_truth(self, node: Compare, *, negate: bool) -> ast.expr:
        if node.op in ("is", "is not"):
            expr = self.value(node.left)
            positive = (node.op == "is") != negate
            return _is_none(expr) if positive else _is_not_none(expr)
        members = self.member_set(node.right) if node.op in ("in", "not in") else None
        if members is not None:
            left = self.value(node.left)
            op = _CMP_OPS[node.op]
            if not negate and node.op == "in":
                # None never is in the set (nulls were dropped), so no null test is needed.
                return _Compare(left=left, ops=[op], comparators=[members])
            first, later = self.temp(left)
            found = _Compare(left=later, ops=[op], comparators=[members])
            return _and(_is_not_none(first), _not(found) if negate else found)
        left, right = self.compare_operands(node)
        if not negate and node.op == "==" and (_never_null(node.left) or _never_null(node.right)):
            # null == constant is False in Python, exactly the truth of a null comparison.
            return _Compare(left=left, ops=[_EQ], comparators=[right])
        if self.optimistic and not negate and node.op in _ORDERING:
            # None < x raises TypeError: the checked code then decides.
            return _Compare(left=left, ops=[_CMP_OPS[node.op]], comparators=[right])
        checks: list[ast.expr] = []
        refs: list[ast.expr] = []
        for operand, expr in ((node.left, left), (node.right, right)):
            if _never_null(operand):
                refs.append(expr)
                continue
            first, later = self.temp(expr)
            checks.append(_is_not_none(first))
            refs.append(later)
        test: ast.expr = _Compare(left=refs[0], ops=[_CMP_OPS[node.op]], comparators=[refs[1]])
        if negate:
            test = _not(test)
        return _and(*checks, test)


def compile_row(
    roots: Sequence[Node],
    *,
    mode: str,
    sources: Sequence[str],
    locate: Callable[[Mapping[str, Any], datetime | None], None] | None = None,
) -> RowProgram:
    """Compile ``roots`` into ``f(fact, now=None)``.

    ``mode`` is "truth" (one predicate: returns bool), "value" (one expression: returns its
    value, None for null), "truths" (many predicates: returns list[bool]) or "mask" (many
    predicates: returns an int whose bit i is predicate i). When a fact's
    value has an undeclared type, ``locate`` (if given) is called to raise a precise error,
    else an EvaluationError naming ``sources`` is raised.
    """
    # A large rule set's function is hundreds of thousands of AST nodes (see memory.py).
    with collection_paused:
        if mode == "mask" and len(roots) > MASK_GROUP:
            return _compile_mask_groups(roots, sources, locate)
        return _compile_one(roots, mode, sources, locate, normalize=True)


# Rules per function of a large mask. CPython compiles one function of 2,000 rules more slowly
# than eight of 250 (a third of a 2,000-rule first evaluation went to the difference), and a
# fact's evaluation makes one more call per group, which is little beside 250 conditions.
MASK_GROUP = 250


def _compile_mask_groups(
    roots: Sequence[Node],
    sources: Sequence[str],
    locate: Callable[[Mapping[str, Any], datetime | None], None] | None,
) -> RowProgram:
    """The mask of ``roots`` as one function per ``MASK_GROUP`` rules, and a function joining
    their masks. The evaluation time is normalized once, by the joining function, so every
    rule of a fact sees the same ``now``; each group falls back to its checked code alone."""
    parts = [
        _compile_one(
            roots[start : start + MASK_GROUP],
            "mask",
            sources,
            locate,
            normalize=False,
            read_first=True,
        )
        for start in range(0, len(roots), MASK_GROUP)
    ]
    generator = _Generator()
    generator.uses_now = any(part.uses_now for part in parts)
    calls: list[ast.expr] = []
    for index, part in enumerate(parts):
        name = f"_group{index}"
        generator.bound[name] = part.function
        call = _call(_name(name), _FACT, _NOW)
        shift = index * MASK_GROUP
        calls.append(_BinOp(left=call, op=_LSHIFT, right=_const(shift)) if shift else call)
    joined = calls[0]
    for call in calls[1:]:
        joined = _BinOp(left=joined, op=_BIT_OR, right=call)
    fail = _failure(locate, sources)
    generator.bound["_fail"] = fail
    generator.bound["_errors"] = _RUNTIME_ERRORS
    definition = _definition("_expression", [_Return(value=joined)], generator)
    namespace: dict[str, Any] = {"__builtins__": {}, **generator.bound}
    return RowProgram(
        _function(definition, namespace),
        definition,
        uses_now=generator.uses_now,
        parts=parts,
    )


def _compile_one(
    roots: Sequence[Node],
    mode: str,
    sources: Sequence[str],
    locate: Callable[[Mapping[str, Any], datetime | None], None] | None,
    *,
    normalize: bool,
    read_first: bool = False,
) -> RowProgram:
    generator = _Generator()
    generator.read_first = read_first

    def build() -> ast.expr:
        if mode == "value":
            return generator.value(roots[0])
        if mode == "truth":
            return generator.truth(roots[0])
        if mode == "mask":
            # Bit i set when predicate i holds: an int, not a list, so a caller can look the
            # whole answer up in a table without allocating per fact (small ints are shared).
            # Joined as a balanced tree: a chain of 2,000 "|" would nest too deep to compile.
            bits: list[ast.expr] = [
                _BinOp(left=generator.truth(root), op=_LSHIFT, right=_const(position))
                for position, root in enumerate(roots)
            ] or [_const(0)]
            while len(bits) > 1:
                pairs = [
                    _BinOp(left=bits[i], op=_BIT_OR, right=bits[i + 1])
                    for i in range(0, len(bits) - 1, 2)
                ]
                bits = pairs + bits[len(pairs) * 2 :]
            return bits[0]
        return _List(elts=[generator.truth(root) for root in roots], ctx=_LOAD)

    return _compile_row(generator, build, mode, sources, locate, normalize)


def _failure(
    locate: Callable[[Mapping[str, Any], datetime | None], None] | None,
    sources: Sequence[str],
) -> Callable[[Exception, Mapping[str, Any], datetime | None], EvaluationError]:
    """What the generated code calls to raise when a fact cannot be evaluated."""

    def fail(exc: Exception, fact: Mapping[str, Any], now: datetime | None) -> EvaluationError:
        if locate is not None:
            locate(fact, now)
        return EvaluationError(
            f"cannot evaluate {' / '.join(repr(s) for s in sources)}: {exc}",
            fix="declare the fields' types in the schema, or correct the facts",
        )

    return fail


def _compile_row(
    generator: _Generator,
    build: Callable[[], ast.expr],
    mode: str,
    sources: Sequence[str],
    locate: Callable[[Mapping[str, Any], datetime | None], None] | None,
    normalize: bool,
) -> RowProgram:
    generator.bound["_fail"] = _failure(locate, sources)
    generator.bound["_errors"] = _RUNTIME_ERRORS
    fast: ast.expr | None = None
    if mode != "value":
        generator.optimistic = True
        fast = build()
        generator.optimistic = False
        if not generator.reads_fields:
            fast = None  # reads no field: nothing can be null, the checked code is as fast
    if fast is None:
        body = _checked_body(build(), generator)
        definition = _definition("_expression", body, generator, normalize=normalize)
        namespace: dict[str, Any] = {"__builtins__": {}, **generator.bound}
        return RowProgram(_function(definition, namespace), definition, uses_now=generator.uses_now)

    # The optimistic code alone, whose fallback calls the checked code. The checked code is
    # built and compiled when a fact first needs it: half of what a large rule set's first
    # evaluation compiles, when its first facts have every field and no null.
    generator.bound["KeyError"] = KeyError
    generator.bound["TypeError"] = TypeError
    fallback = _ExceptHandler(
        type=_Tuple(elts=[_name("KeyError"), _name("TypeError")], ctx=_LOAD),
        name=None,
        body=[_Pass()],
    )
    reads: list[ast.stmt] = []
    if generator.read_first:
        reads = [
            _assign(local, _Subscript(value=_FACT, slice=_const(field), ctx=_LOAD))
            for field, local in generator.fields.items()
        ]
    optimistic: list[ast.stmt] = [
        _Try(body=[*reads, _Return(value=fast)], handlers=[fallback], orelse=[], finalbody=[])
    ]
    after: list[ast.stmt] = [_Return(value=_call(_name("_checked"), _FACT, _NOW))]
    definition = _definition("_expression", optimistic, generator, after=after, normalize=normalize)
    namespace = {"__builtins__": {}, **generator.bound}
    lock = threading.Lock()
    built: list[ast.FunctionDef] = []

    def compile_checked() -> ast.FunctionDef:
        # Under a lock: two threads meeting their first null at once compile it once.
        with lock, collection_paused:
            if not built:
                body = _checked_body(build(), generator)
                # ``now`` was normalized by the optimistic function that calls this one.
                checked_definition = _definition("_checked", body, generator, normalize=False)
                namespace.update(generator.bound)
                namespace["_checked"] = _function(checked_definition, namespace)
                built.append(checked_definition)
        return built[0]

    def checked_first(fact: Mapping[str, Any], now: datetime | None) -> Any:
        compile_checked()
        return namespace["_checked"](fact, now)

    namespace["_checked"] = checked_first
    return RowProgram(
        _function(definition, namespace),
        definition,
        compile_checked,
        uses_now=generator.uses_now,
    )


def _checked_body(checked: ast.expr, generator: _Generator) -> list[ast.stmt]:
    """Read every field the checked code uses into a local (``None`` when absent), once for
    all rules, then return ``checked``."""
    body: list[ast.stmt] = []
    if generator.fields:
        body.append(_assign("_get", _Attribute(value=_FACT, attr="get", ctx=_LOAD)))
        body.extend(
            _assign(local, _call(_name("_get"), _const(field)))
            for field, local in generator.fields.items()
        )
    body.append(_Return(value=checked))
    return body


def _definition(
    name: str,
    body: list[ast.stmt],
    generator: _Generator,
    *,
    after: list[ast.stmt] | None = None,
    normalize: bool = True,
) -> ast.FunctionDef:
    """``def name(fact, now=None)`` running ``body`` with runtime errors turned into
    EvaluationError (through ``_fail``), then ``after`` outside that handler."""
    if normalize and generator.uses_now:
        generator.helper("_normalize_now")
        body = [_assign("now", _call(_name("_normalize_now"), _NOW)), *body]
    handler = _ExceptHandler(
        type=_name("_errors"),
        name="exc",
        body=[
            _Raise(
                exc=_call(_name("_fail"), _name("exc"), _FACT, _NOW),
                cause=_name("exc"),
            )
        ],
    )
    # try/except is free in CPython 3.11+ unless an exception is actually raised.
    function_body: list[ast.stmt] = [
        _Try(body=body, handlers=[handler], orelse=[], finalbody=[]),
        *(after or []),
    ]
    arguments = ast.arguments(
        posonlyargs=[],
        args=[_arg(arg="fact"), _arg(arg="now")],
        vararg=None,
        kwonlyargs=[],
        kw_defaults=[],
        kwarg=None,
        defaults=[_const(None)],
    )
    return _FunctionDef(
        name=name,
        args=arguments,
        body=function_body,
        decorator_list=[],
        returns=None,
        type_comment=None,
    )


def _function(definition: ast.FunctionDef, namespace: dict[str, Any]) -> RowFunction:
    module = ast.Module(body=[definition], type_ignores=[])
    with warnings.catch_warnings():
        # CPython folds constants and may then warn, e.g. that "(0 + 0) is None" compares a
        # literal with "is"; our code means exactly that, and the warning would be noise.
        warnings.simplefilter("ignore", SyntaxWarning)
        code = compile(module, "<reclaim expression>", "exec")
    # The module code only defines the function; we take the function's code object out of
    # its constants rather than running the module. The values it refers to (helpers, lists,
    # regexes) are its globals, next to empty builtins: global loads are cached by CPython,
    # whereas keyword-only defaults would cost a dict lookup each per call.
    function_code = next(c for c in code.co_consts if isinstance(c, types.CodeType))
    return types.FunctionType(function_code, namespace, definition.name, (None,))


def _assign(target: str, value: ast.expr) -> ast.stmt:
    return _Assign(targets=[_Name(id=target, ctx=_STORE)], value=value)
