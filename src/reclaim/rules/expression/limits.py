"""Resource limits, all checked before an expression does any work."""

from __future__ import annotations

__all__ = ["DEFAULT_LIMITS", "Limits"]

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Bounds on what one expression, and one rule file, may ask for.

    Every bound is checked at compile time, in order from cheapest to most expensive (source
    length, raw bracket depth, then the parsed tree), so a hostile expression is rejected before
    Python's own parser or our compiler can be made to spend memory or stack on it.
    """

    max_source_chars: int = 10_000
    """Characters in one expression's source."""
    max_depth: int = 64
    """Nesting depth: brackets in the raw text, and levels of the parsed tree."""
    max_nodes: int = 2_000
    """Syntax-tree nodes in one expression."""
    max_string_len: int = 100_000
    """Characters in one string literal or string constant."""
    max_list_len: int = 100_000
    """Items in one list literal or list constant (``vars``)."""
    max_power: int = 64
    """Largest absolute exponent of ``**``; the exponent must be an integer literal."""
    max_int_digits: int = 30
    """Decimal digits in one integer literal."""

    # Per rule file: what a file may ask of the checker and of the first evaluation, whose
    # cost grows with these totals (see "Limits" in docs/rules.md for the time budget).
    max_rules: int = 2_000
    """Rules in one file."""
    max_file_nodes: int = 50_000
    """Syntax-tree nodes of every condition and parameter expression of one file together."""
    max_file_constant_items: int = 500_000
    """Characters and list items of the constants (``vars`` and literals) that the expressions
    of one file use, counted once per use: a 100,000-item list used by 1,000 rules is
    100,000,000, as the evaluators copy or hash it that many times."""


DEFAULT_LIMITS = Limits()
