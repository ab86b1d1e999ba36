"""The public names of reclaim.rules are frozen: changing them is a deliberate act."""

from __future__ import annotations

import reclaim.rules

PUBLIC = [
    "ACTIONS",
    "AbsentField",
    "CONSTANTS",
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


def test_public_names_are_frozen() -> None:
    assert sorted(reclaim.rules.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert hasattr(reclaim.rules, name), name
