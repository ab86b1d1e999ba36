"""Loading rule files: checked in stages, every error collected, nothing run.

1. **structure**: the YAML is read with positions (syntax, duplicate keys, size and alias
   limits; see :mod:`reclaim.rules.source`);
2. **schema**: the document is validated against the file format (:mod:`reclaim.rules.spec`
   reads a valid mapping; the pydantic models of :mod:`reclaim.rules.model` word the errors of
   any other): unknown keys ("did you mean …?"), missing keys, wrong types;
3. **model**: the fact schema is read, every condition and expression parameter is compiled
   against it, actions are looked up and their parameters checked against the action's schema,
   rule ids must be unique.

A stage reports every error it finds. Rules that fail the schema stage are left out of the
model stage, but every other rule is still checked, so one run shows every problem of a file.
"""

from __future__ import annotations

__all__ = [
    "check_rule_files",
    "find_rule_files",
    "load_rules",
    "load_rules_text",
]

import os
from collections.abc import Iterable, Mapping
from pathlib import Path as FilePath
from typing import Any

from reclaim.errors import ConfigError
from reclaim.rules.actions import ACTIONS, CONSTANTS, ActionRegistry
from reclaim.rules.checker import RuleChecker
from reclaim.rules.errors import (
    RuleFileError,
)
from reclaim.rules.expression import (
    DEFAULT_LIMITS,
    Limits,
)
from reclaim.rules.expression.memory import collection_paused
from reclaim.rules.ruleset import RuleSet
from reclaim.rules.source import DEFAULT_YAML_LIMITS, YamlLimits, load_yaml, read_rule_file

RULE_SUFFIXES = (".yaml", ".yml")
TEST_SUFFIXES = (".tests.yaml", ".tests.yml")


def load_rules_text(
    text: str | bytes,
    path: str = "<string>",
    *,
    actions: ActionRegistry | None = None,
    constants: Mapping[str, Any] | None = None,
    yaml_limits: YamlLimits = DEFAULT_YAML_LIMITS,
    limits: Limits = DEFAULT_LIMITS,
) -> RuleSet:
    """Load a rule set from YAML text; ``path`` names it in error messages.

    ``actions`` is the registry to resolve action names in (default :data:`ACTIONS`);
    ``constants`` are names the conditions may use besides the file's ``vars`` (default: those
    given to :func:`register_constants`; the file's ``vars`` win on a clash). Raises
    :class:`RuleFileError` listing every error found.
    """
    # A large file is hundreds of thousands of short-lived objects (see memory.py).
    with collection_paused:
        try:
            document = load_yaml(text, path, limits=yaml_limits)
        except RuleFileError:
            raise
        except ConfigError as exc:
            raise RuleFileError([exc]) from exc
        checker = RuleChecker(
            document,
            actions=actions if actions is not None else ACTIONS,
            constants=constants if constants is not None else CONSTANTS,
            limits=limits,
        )
        stem = os.path.basename(path)
        for suffix in RULE_SUFFIXES:
            stem = stem.removesuffix(suffix)
        ruleset = checker.check(stem)
    if checker.errors or ruleset is None:
        raise RuleFileError(checker.errors)
    return ruleset


def load_rules(
    path: str | os.PathLike[str],
    *,
    actions: ActionRegistry | None = None,
    constants: Mapping[str, Any] | None = None,
    yaml_limits: YamlLimits = DEFAULT_YAML_LIMITS,
    limits: Limits = DEFAULT_LIMITS,
) -> RuleSet:
    """Load and check one rule file. See :func:`load_rules_text` for the options and errors."""
    try:
        data = read_rule_file(path, yaml_limits.max_bytes)
    except ConfigError as exc:
        raise RuleFileError([exc]) from exc
    return load_rules_text(
        data,
        str(path),
        actions=actions,
        constants=constants,
        yaml_limits=yaml_limits,
        limits=limits,
    )


def find_rule_files(paths: Iterable[str | os.PathLike[str]]) -> list[FilePath]:
    """The rule files named by ``paths``: files as given, folders searched recursively for
    ``*.yaml``/``*.yml`` except rule tests (``*.tests.yaml``)."""
    found: list[FilePath] = []
    for item in paths:
        path = FilePath(item)
        if path.is_dir():
            for candidate in sorted(path.rglob("*")):
                name = candidate.name
                if (
                    candidate.is_file()
                    and name.endswith(RULE_SUFFIXES)
                    and not name.endswith(TEST_SUFFIXES)
                ):
                    found.append(candidate)
        else:
            found.append(path)
    return found


def check_rule_files(
    paths: Iterable[str | os.PathLike[str]],
    *,
    actions: ActionRegistry | None = None,
    constants: Mapping[str, Any] | None = None,
) -> tuple[list[RuleSet], list[ConfigError]]:
    """Load every rule file under ``paths``: the rule sets that loaded, and every error of the
    ones that did not."""
    rulesets: list[RuleSet] = []
    errors: list[ConfigError] = []
    for path in find_rule_files(paths):
        try:
            rulesets.append(load_rules(path, actions=actions, constants=constants))
        except RuleFileError as exc:
            errors.extend(exc.errors)
    return rulesets, errors
