"""The errors a rule file can have, all found before any rule runs.

Each is a :class:`~reclaim.errors.ConfigError` that names ``file:line:column`` and ends with the
fix. Loading a file collects every error it can find (not only the first) into one
:class:`RuleFileError`, whose ``errors`` list keeps them in file order, one line each.
"""

from __future__ import annotations

__all__ = [
    "ActionParamsError",
    "DuplicateKeyError",
    "DuplicateRuleIdError",
    "RuleFileError",
    "RuleSchemaError",
    "TypeMismatchError",
    "UnknownActionError",
    "UnknownKeyError",
    "YamlLimitError",
    "YamlSyntaxError",
]

from collections.abc import Sequence

from reclaim.errors import ConfigError


class YamlSyntaxError(ConfigError):
    """The file is not valid YAML."""


class YamlLimitError(ConfigError):
    """The file is larger, deeper, expands to more, or asks for more work (rules, syntax nodes,
    constants) than a rule file may; see the limits in docs/rules.md."""


class DuplicateKeyError(ConfigError):
    """A mapping has the same key twice; YAML would silently keep only the last one."""


class UnknownKeyError(ConfigError):
    """A key the rule file format does not know."""


class RuleSchemaError(ConfigError):
    """A value has the wrong shape or type for the rule file format."""


class UnknownActionError(ConfigError):
    """A rule names an action that is not registered."""


class ActionParamsError(ConfigError):
    """A rule's parameters do not fit its action's schema."""


class DuplicateRuleIdError(ConfigError):
    """Two rules in one rule set have the same id."""


class TypeMismatchError(ConfigError):
    """An expression gives a value of the wrong type for where it is used."""


def _sort_key(error: ConfigError) -> tuple[str, int, int]:
    location = error.location
    if location is None:
        return ("", 0, 0)
    return (location.path, location.line or 0, location.column or 0)


class RuleFileError(ConfigError):
    """A rule file has errors; nothing was run.

    ``errors`` holds every error found, sorted by position, each rendering as one line
    ``path:line:col: message; fix``. ``str()`` joins them with newlines.
    """

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        if not errors:
            raise ValueError("RuleFileError needs at least one error")
        self.errors: list[ConfigError] = sorted(errors, key=_sort_key)
        super().__init__("\n".join(str(error) for error in self.errors))

    def __str__(self) -> str:
        return self.message
