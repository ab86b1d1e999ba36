"""The JSON Schema of rule files and the vocabulary tables."""

from __future__ import annotations

import json

from reclaim.rules import ACTIONS, action_table, function_table, rule_file_schema
from reclaim.rules.expression import FUNCTIONS


def test_rule_file_schema_describes_the_format() -> None:
    schema = rule_file_schema()
    json.dumps(schema)  # serializable as is
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert {"kind", "mode", "facts", "vars", "rules", "tests"} <= set(schema["properties"])
    rule = schema["$defs"]["RuleModel"]
    assert {"id", "name", "when", "condition", "action", "params", "priority"} <= set(
        rule["properties"]
    )
    assert rule["properties"]["action"]["anyOf"][0]["enum"] == ACTIONS.names()
    conditional = [part for part in rule["allOf"] if "if" in part]
    assert len(conditional) == len(ACTIONS)
    recommend = next(
        part for part in conditional if part["if"]["properties"]["action"]["const"] == "recommend"
    )
    params = recommend["then"]["properties"]["params"]
    assert params["required"] == ["type"]
    # A number parameter may be written as an expression.
    assert params["properties"]["savings"]["type"] == ["number", "string"]
    assert "x-kind" not in json.dumps(schema)


def test_function_table_lists_every_function() -> None:
    table = function_table()
    assert [entry["name"] for entry in table] == sorted(FUNCTIONS)
    assert all(entry["signature"] and entry["example"] for entry in table)


def test_action_table_has_every_action_with_its_example() -> None:
    table = action_table()
    assert [entry["name"] for entry in table] == ACTIONS.names()
    recommend = next(entry for entry in table if entry["name"] == "recommend")
    assert recommend["param_kinds"]["savings"] == "expression"
    assert recommend["param_kinds"]["title"] == "template"
    assert recommend["param_kinds"]["type"] == "literal"
    assert all(entry["example"] for entry in table)
