"""Plain YAML scalars: their tag as ruamel.yaml resolves it, and the common values without it.

A plain (unquoted) scalar's type depends on its text: ``10`` is an integer, ``true`` a
boolean, ``idle`` a string. ruamel.yaml decides with a table of patterns keyed by the first
character, YAML 1.2's (the reader of :mod:`reclaim.rules.source` always resolves with the 1.2
table, whatever a ``%YAML`` directive says). The table below is that table, copied so that
a file needs ruamel.yaml only for what it cannot read alone: importing ruamel.yaml was a
tenth of ``reclaim rules check`` of one rule (issue 9, item 13). A test compares the two
tables, and the values built here with ruamel.yaml's, on generated text.

:func:`plain_value` builds the values that need no more than a comparison (null, booleans,
decimal integers); floats, timestamps and the other spellings of integers are left to
ruamel.yaml's constructors.
"""

from __future__ import annotations

__all__ = ["BOOL", "INT", "NOT_PLAIN", "NULL", "STR", "implicit_tag", "plain_value"]

import re
from typing import Any

STR = "tag:yaml.org,2002:str"
BOOL = "tag:yaml.org,2002:bool"
INT = "tag:yaml.org,2002:int"
NULL = "tag:yaml.org,2002:null"

# (tag, pattern, first characters) in ruamel.yaml's order for YAML 1.2 (its
# ruamel.yaml.resolver.implicit_resolvers); those of _VERBOSE are verbose (re.X).
_IMPLICIT_1_2: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (BOOL, """^(?:true|True|TRUE|false|False|FALSE)$""", tuple("tTfF")),
    (
        "tag:yaml.org,2002:float",
        """^(?:
         [-+]?(?:[0-9][0-9_]*)\\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |[-+]?\\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\\.(?:inf|Inf|INF)
        |\\.(?:nan|NaN|NAN))$""",
        tuple("-+0123456789."),
    ),
    (
        INT,
        """^(?:[-+]?0b[0-1_]+
        |[-+]?0o?[0-7_]+
        |[-+]?[0-9_]+
        |[-+]?0x[0-9a-fA-F_]+)$""",
        tuple("-+0123456789"),
    ),
    ("tag:yaml.org,2002:merge", "^(?:<<)$", ("<",)),
    (
        NULL,
        """^(?: ~
        |null|Null|NULL
        | )$""",
        ("~", "n", "N", ""),
    ),
    (
        "tag:yaml.org,2002:timestamp",
        """^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
        |[0-9][0-9][0-9][0-9] -[0-9][0-9]? -[0-9][0-9]?
        (?:[Tt]|[ \\t]+)[0-9][0-9]?
        :[0-9][0-9] :[0-9][0-9] (?:\\.[0-9]*)?
        (?:[ \\t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""",
        tuple("0123456789"),
    ),
    ("tag:yaml.org,2002:value", "^(?:=)$", ("=",)),
    ("tag:yaml.org,2002:yaml", "^(?:!|&|\\*)$", tuple("!&*")),
)

#: The patterns to try for a scalar, by its first character ("" for the empty scalar).
RESOLVERS: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
_VERBOSE = frozenset({BOOL, "tag:yaml.org,2002:float", INT, NULL, "tag:yaml.org,2002:timestamp"})
for _tag, _pattern, _firsts in _IMPLICIT_1_2:
    _compiled = re.compile(_pattern, re.X if _tag in _VERBOSE else 0)
    for _first in _firsts:
        RESOLVERS.setdefault(_first, []).append((_tag, _compiled))

#: A value :func:`plain_value` leaves to ruamel.yaml's constructor.
NOT_PLAIN = object()

# Short enough that int() never meets its limit on digits, which ruamel.yaml's constructor
# reports as an error of its own.
_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]{0,17})")


def implicit_tag(value: str, implicit: tuple[bool, bool]) -> str:
    """The tag ruamel.yaml's resolver gives a scalar without a tag of its own: from the
    table when it is plain (``implicit[0]``), else a string."""
    if implicit[0]:
        for tag, pattern in RESOLVERS.get(value[:1], ()):
            if pattern.match(value):
                return tag
    return STR


def plain_value(tag: str, text: str) -> Any:
    """The value of a scalar with the resolved ``tag``, as ruamel.yaml's safe constructor
    builds it, or :data:`NOT_PLAIN` when only that constructor should build it."""
    if tag == NULL:
        return None
    if tag == BOOL:
        return text.lower() == "true"
    if tag == INT and _DECIMAL.fullmatch(text):
        return int(text)
    return NOT_PLAIN
