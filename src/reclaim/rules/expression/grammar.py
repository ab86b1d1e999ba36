"""The grammar's tables: Python operators we accept, and constructs we refuse with a reason."""

from __future__ import annotations

__all__ = ["BINOPS", "CMPOPS", "ORDERING", "REJECTED", "operator_text"]

import ast

BINOPS: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
}
CMPOPS: dict[type[ast.cmpop], str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
}
ORDERING = frozenset({"<", "<=", ">", ">="})

# Constructs Python has and we refuse, with the reason shown to the user.
REJECTED: dict[type[ast.AST], tuple[str, str]] = {
    ast.Lambda: ("lambdas are not allowed", "use the built-in functions"),
    ast.ListComp: ("comprehensions are not allowed", "write the condition without a loop"),
    ast.SetComp: ("comprehensions are not allowed", "write the condition without a loop"),
    ast.DictComp: ("comprehensions are not allowed", "write the condition without a loop"),
    ast.GeneratorExp: ("generator expressions are not allowed", "write it without a loop"),
    ast.JoinedStr: ("f-strings are not allowed", "compare fields directly"),
    ast.FormattedValue: ("f-strings are not allowed", "compare fields directly"),
    ast.NamedExpr: ("assignment (:=) is not allowed", "expressions cannot assign"),
    ast.Starred: ("unpacking (*) is not allowed", "pass arguments one by one"),
    ast.Await: ("await is not allowed", "expressions cannot await"),
    ast.Yield: ("yield is not allowed", "expressions cannot yield"),
    ast.YieldFrom: ("yield is not allowed", "expressions cannot yield"),
    ast.Slice: ("slices are not supported", "index with one key or position"),
    ast.Dict: ("map literals are not supported", "compare map keys one at a time"),
    ast.Set: ("set literals are not supported", "use a list: x in ['a', 'b']"),
}


def operator_text(op: ast.operator) -> str:
    return {
        ast.BitAnd: "&",
        ast.BitOr: "|",
        ast.BitXor: "^",
        ast.LShift: "<<",
        ast.RShift: ">>",
        ast.MatMult: "@",
    }.get(type(op), type(op).__name__)
