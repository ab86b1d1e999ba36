"""The rules engine: YAML rules over facts, with a safe expression language.

Load a rule file with :func:`load_rules` (every error is found before anything runs, each naming
``file:line:col`` and the fix), then evaluate facts one at a time with :meth:`RuleSet.evaluate`
or a whole Polars table with :meth:`RuleSet.evaluate_frame`. :meth:`RuleSet.explain` shows why
each rule fired or not; :func:`run_rule_tests` runs the tests kept beside the rules. Python
callables become actions with :func:`register_action`. See docs/rules.md.
"""

from typing import TYPE_CHECKING, Any

# Imported now, not on first use: importing the submodule reclaim.rules.explain (as
# RuleSet.explain does) binds the package's attribute ``explain`` to the module, which would
# hide the function of the same name from a later ``from reclaim.rules import explain``.
from reclaim.rules.explain import Explanation, RuleExplanation, explain

if TYPE_CHECKING:
    from reclaim.rules.actions import (
        ACTIONS,
        CONSTANTS,
        ActionRegistry,
        ActionSpec,
        register_action,
        register_constants,
    )
    from reclaim.rules.errors import (
        ActionParamsError,
        DuplicateKeyError,
        DuplicateRuleIdError,
        RuleFileError,
        RuleSchemaError,
        TypeMismatchError,
        UnknownActionError,
        UnknownKeyError,
        YamlLimitError,
        YamlSyntaxError,
    )
    from reclaim.rules.expression import (
        ExpressionError,
        FactSchema,
        FieldType,
        compile_expression,
    )
    from reclaim.rules.facts import AbsentField, absent_fields, parse_declared_datetimes
    from reclaim.rules.loader import check_rule_files, find_rule_files, load_rules, load_rules_text
    from reclaim.rules.ruleset import Match, Outcome, Rule, RuleSet
    from reclaim.rules.schema import action_table, function_table, rule_file_schema
    from reclaim.rules.source import YamlLimits
    from reclaim.rules.testing import RuleTestReport, RuleTestResult, run_rule_tests

# The other public names are imported from their modules on first use (PEP 562): ``reclaim
# rules check`` needs the loader, not the test runner or the schema printer (which imports
# pydantic), and a command line pays for every module it imports on every start (issue 9,
# item 13).
_MODULES = {
    "reclaim.rules.actions": (
        "ACTIONS",
        "CONSTANTS",
        "ActionRegistry",
        "ActionSpec",
        "register_action",
        "register_constants",
    ),
    "reclaim.rules.errors": (
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
    ),
    "reclaim.rules.expression": (
        "ExpressionError",
        "FactSchema",
        "FieldType",
        "compile_expression",
    ),
    "reclaim.rules.facts": ("AbsentField", "absent_fields", "parse_declared_datetimes"),
    "reclaim.rules.loader": (
        "check_rule_files",
        "find_rule_files",
        "load_rules",
        "load_rules_text",
    ),
    "reclaim.rules.ruleset": ("Match", "Outcome", "Rule", "RuleSet"),
    "reclaim.rules.schema": ("action_table", "function_table", "rule_file_schema"),
    "reclaim.rules.source": ("YamlLimits",),
    "reclaim.rules.testing": ("RuleTestReport", "RuleTestResult", "run_rule_tests"),
}
_MODULE_OF = {name: module for module, names in _MODULES.items() for name in names}


__all__ = [
    "ACTIONS",
    "CONSTANTS",
    "AbsentField",
    "ActionParamsError",
    "ActionRegistry",
    "ActionSpec",
    "DuplicateKeyError",
    "DuplicateRuleIdError",
    "Explanation",
    "ExpressionError",
    "FactSchema",
    "FieldType",
    "Match",
    "Outcome",
    "Rule",
    "RuleExplanation",
    "RuleFileError",
    "RuleSchemaError",
    "RuleSet",
    "RuleTestReport",
    "RuleTestResult",
    "TypeMismatchError",
    "UnknownActionError",
    "UnknownKeyError",
    "YamlLimitError",
    "YamlLimits",
    "YamlSyntaxError",
    "absent_fields",
    "action_table",
    "check_rule_files",
    "compile_expression",
    "explain",
    "find_rule_files",
    "function_table",
    "load_rules",
    "load_rules_text",
    "parse_declared_datetimes",
    "register_action",
    "register_constants",
    "rule_file_schema",
    "run_rule_tests",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
