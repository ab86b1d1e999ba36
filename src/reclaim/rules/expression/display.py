"""Values shown to people (explain trees, error lines) and written as JSON, bounded in size.

A fact can hold what no one would type: an integer of a million digits (which Python refuses to
turn into text past 4,300 digits) or a list nested a thousand levels deep (which ``repr`` and
``json`` cannot walk without hitting the recursion limit). Explaining such a fact must still
work, so values are abbreviated here instead of being printed whole.
"""

from __future__ import annotations

__all__ = ["plain_value", "show_value"]

import math
import reprlib
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

# Python refuses int → str past sys.get_int_max_str_digits() (4,300 by default); stay well
# below it, and below what a person reads anyway.
_MAX_DIGITS = 100
_MAX_DEPTH = 20


def _huge_int(value: int) -> bool:
    return value.bit_length() > _MAX_DIGITS * 3.32


def _describe_int(value: int) -> str:
    digits = math.floor((abs(value).bit_length() - 1) * math.log10(2)) + 1
    sign = "-" if value < 0 else ""
    return f"<{sign}integer of about {digits:,} digits>"


class _Repr(reprlib.Repr):
    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 6
        self.maxstring = 200
        self.maxother = 200
        self.maxlist = self.maxtuple = self.maxset = self.maxdict = 20

    def repr_int(self, x: int, level: int) -> str:
        return _describe_int(x) if _huge_int(x) else repr(x)


_REPR = _Repr()


def show_value(value: Any) -> str:
    """``value`` as a person reads it: null, ISO datetimes, else an abbreviated ``repr``."""
    if value is None:
        return "null"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return _REPR.repr(value)


def plain_value(value: Any, depth: int = 0) -> Any:
    """``value`` with what JSON cannot write replaced by a description: integers too long to
    print become text, and containers nested deeper than 20 levels end in ``"…"``."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return _describe_int(value) if _huge_int(value) else value
    if isinstance(value, Mapping | list | tuple):
        if depth >= _MAX_DEPTH:
            return "…"
        if isinstance(value, Mapping):
            return {str(key): plain_value(item, depth + 1) for key, item in value.items()}
        return [plain_value(item, depth + 1) for item in value]
    return value
