"""The savings rule pack: the built-in one shipped in the package, or a user's file."""

from __future__ import annotations

__all__ = ["BUILTIN_PACK", "builtin_pack_path", "load_pack"]

import os
from importlib import resources
from pathlib import Path
from typing import Final

from reclaim.errors import ConfigError, SourceLocation
from reclaim.rules import RuleSet, load_rules

BUILTIN_PACK: Final = "savings.yaml"


def builtin_pack_path() -> Path:
    """Where the built-in pack lives (inside the installed package)."""
    return Path(str(resources.files("reclaim.recommend.rulepack").joinpath(BUILTIN_PACK)))


def load_pack(path: str | os.PathLike[str] | None = None) -> RuleSet:
    """Load and check the savings rules at ``path``, or the built-in pack when ``path`` is None.

    A user's pack must be a rule set of kind ``savings``; every error names file, line and fix.
    """
    source = builtin_pack_path() if path is None else Path(path)
    ruleset = load_rules(source)
    if ruleset.kind != "savings":
        raise ConfigError(
            f"rule set {ruleset.name!r} is of kind {ruleset.kind!r}, not savings",
            location=SourceLocation(str(source)),
            fix="give `reclaim recommend --rules` a file with `kind: savings`",
        )
    return ruleset
