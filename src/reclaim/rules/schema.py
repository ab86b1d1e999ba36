"""The rule file format as JSON Schema (for editors), and the vocabulary tables.

:func:`rule_file_schema` gives a JSON Schema (draft 2020-12) of a rule file: point an editor's
YAML language server at it (``# yaml-language-server: $schema=rules.schema.json``) to get
completion and checks while typing. Each registered action adds its parameter schema, so a
rule's ``params`` are checked against its ``action``. The schema cannot check expressions; the
loader does (``reclaim rules check``).
"""

from __future__ import annotations

__all__ = ["action_table", "function_table", "rule_file_schema"]

import copy
from typing import Any

from reclaim.rules.actions import ACTIONS, ActionRegistry
from reclaim.rules.expression import FUNCTIONS
from reclaim.rules.model import RuleSetModel, RuleTestFileModel

_SCHEMA_ID = "https://reclaim.dev/schemas/rules.schema.json"


def _strip_private(schema: Any) -> Any:
    """Drop ``x-kind`` (ours) so the published schema has only standard keywords."""
    if isinstance(schema, dict):
        return {key: _strip_private(value) for key, value in schema.items() if key != "x-kind"}
    if isinstance(schema, list):
        return [_strip_private(item) for item in schema]
    return schema


def rule_file_schema(actions: ActionRegistry | None = None) -> dict[str, Any]:
    """JSON Schema of a rule file, with the parameters of every action in ``actions``."""
    registry = actions if actions is not None else ACTIONS
    schema = RuleSetModel.model_json_schema(mode="validation")
    defs = schema.setdefault("$defs", {})
    rule = defs["RuleModel"]
    properties = rule["properties"]
    # pydantic names each field by its first alias; the user's first format spells two
    # fields differently, and either spelling is accepted.
    properties["name"] = {**properties["id"], "description": "Another spelling of id."}
    properties["condition"] = {**properties["when"], "description": "Another spelling of when."}
    rule["required"] = []
    rule["allOf"] = [
        {"anyOf": [{"required": ["id"]}, {"required": ["name"]}]},
        {"anyOf": [{"required": ["when"]}, {"required": ["condition"]}]},
    ]
    properties["action"] = {
        "anyOf": [{"enum": registry.names()}, {"type": "null"}],
        "description": properties["action"].get("description", ""),
    }
    for spec in registry.specs():
        rule["allOf"].append(
            {
                "if": {"properties": {"action": {"const": spec.name}}, "required": ["action"]},
                "then": {
                    "properties": {
                        "params": _expression_friendly(_strip_private(dict(spec.schema)))
                    }
                },
            }
        )
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = _SCHEMA_ID
    schema["title"] = "reclaim rule file"
    return schema


def _expression_friendly(params_schema: dict[str, Any]) -> dict[str, Any]:
    """Let a typed parameter also be written as an expression (a string)."""
    result = copy.deepcopy(params_schema)
    for entry in result.get("properties", {}).values():
        declared = entry.get("type")
        if declared is not None and declared != "string":
            types = [declared] if isinstance(declared, str) else list(declared)
            entry["type"] = sorted({*types, "string"})
    return result


def rule_test_file_schema() -> dict[str, Any]:
    """JSON Schema of a ``*.tests.yaml`` file."""
    schema = RuleTestFileModel.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "reclaim rule tests"
    return schema


def function_table() -> list[dict[str, Any]]:
    """Every expression function: name, signature, what it returns, null behaviour, example."""
    return [
        {
            "name": spec.name,
            "signature": spec.signature,
            "returns": spec.returns.value,
            "doc": spec.doc,
            "nulls": spec.nulls,
            "example": spec.example,
        }
        for spec in sorted(FUNCTIONS.values(), key=lambda spec: spec.name)
    ]


def _other_params(schema: Any) -> str | None:
    """How parameters not listed are read: None when they are refused."""
    extra = schema.get("additionalProperties", True)
    if extra is False:
        return None
    return str(extra.get("x-kind", "literal")) if isinstance(extra, dict) else "literal"


def action_table(actions: ActionRegistry | None = None) -> list[dict[str, Any]]:
    """Every action: name, summary, parameter schema, YAML example, whether it is built in."""
    registry = actions if actions is not None else ACTIONS
    return [
        {
            "name": spec.name,
            "summary": spec.summary,
            "builtin": spec.builtin,
            "updates_context": spec.updates_context,
            "params": _strip_private(dict(spec.schema)),
            "param_kinds": {
                name: entry.get("x-kind", "literal")
                for name, entry in spec.schema.get("properties", {}).items()
            },
            "other_params": _other_params(spec.schema),
            "example": spec.example,
        }
        for spec in registry.specs()
    ]
