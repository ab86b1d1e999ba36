"""Action parameters: their JSON Schema check, and how each value is read.

An action's parameter schema is a small JSON Schema (the subset below). Each property may carry
``"x-kind"``, which says how a rule's YAML value is read:

- ``expression``: a string is an expression over the fact (``savings: monthly_cost * 0.7``);
  numbers, booleans, lists and mappings are taken as they are.
- ``template``: text where each ``{expression}`` is replaced by its value
  (``title: "Idle VM {resource_id}"``); ``{{`` and ``}}`` write literal braces. If any
  placeholder is null the whole value is null, as in SQL, so ``coalesce`` sets a default.
- ``literal`` (the default): taken as written.

Only the JSON Schema keywords rule authors need are supported: ``type``, ``properties``,
``required``, ``additionalProperties``, ``enum``, ``const``, ``items``, ``minimum``,
``maximum``, ``minLength``, ``minItems``, ``minProperties``. Unknown keywords are ignored,
as JSON Schema says.
"""

from __future__ import annotations

__all__ = [
    "UNCHECKED",
    "ParamKind",
    "TemplatePart",
    "json_type_of",
    "param_kind",
    "parse_template",
    "validate_json",
]

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

ParamKind = Literal["expression", "template", "literal"]

#: Stands in for a value whose type is known only after evaluation (an expression): it passes
#: every check, and the expression's static type is checked separately.
UNCHECKED: Any = type("Unchecked", (), {"__repr__": lambda self: "<expression>"})()

_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list, tuple),
    "object": (dict, Mapping),
    "null": (type(None),),
}


def json_type_of(value: Any) -> str:
    """The JSON Schema type name of a Python value (``datetime`` counts as ``string``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str | datetime.date):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _is_type(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    if name == "string" and isinstance(value, datetime.date):
        return True
    return isinstance(value, _PY_TYPES.get(name, (object,)))


def validate_json(
    value: Any, schema: Mapping[str, Any], path: tuple[Any, ...] = ()
) -> list[tuple[tuple[Any, ...], str]]:
    """Every way ``value`` breaks ``schema``, as ``(path inside value, message)`` pairs."""
    problems: list[tuple[tuple[Any, ...], str]] = []
    if value is UNCHECKED:
        return problems
    expected = schema.get("type")
    if expected is not None:
        names = [expected] if isinstance(expected, str) else list(expected)
        if not any(_is_type(value, name) for name in names):
            problems.append((path, f"expected {' or '.join(names)}, got {json_type_of(value)}"))
            return problems
    if "const" in schema and value != schema["const"]:
        problems.append((path, f"must be {schema['const']!r}"))
    if "enum" in schema and value not in schema["enum"]:
        choices = ", ".join(repr(choice) for choice in schema["enum"])
        problems.append((path, f"{value!r} is not one of {choices}"))
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append((path, f"must be at least {schema['minimum']}"))
        if "maximum" in schema and value > schema["maximum"]:
            problems.append((path, f"must be at most {schema['maximum']}"))
    if isinstance(value, str) and len(value) < schema.get("minLength", 0):
        problems.append((path, f"must have at least {schema['minLength']} characters"))
    if isinstance(value, list | tuple):
        if len(value) < schema.get("minItems", 0):
            problems.append((path, f"must have at least {schema['minItems']} items"))
        items = schema.get("items")
        if isinstance(items, Mapping):
            for index, item in enumerate(value):
                problems.extend(validate_json(item, items, (*path, index)))
    if isinstance(value, Mapping):
        if len(value) < schema.get("minProperties", 0):
            problems.append((path, f"needs at least {schema['minProperties']} parameters"))
        properties: Mapping[str, Any] = schema.get("properties", {})
        for name in schema.get("required", ()):
            if name not in value:
                problems.append((path, f"missing required parameter {name!r}"))
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in properties:
                problems.extend(validate_json(item, properties[key], (*path, key)))
            elif extra is False:
                problems.append(((*path, key), f"unknown parameter {key!r}"))
            elif isinstance(extra, Mapping):
                problems.extend(validate_json(item, extra, (*path, key)))
    return problems


def param_kind(schema: Mapping[str, Any], name: str) -> ParamKind:
    """How the parameter ``name`` of an action with ``schema`` is read (see module doc)."""
    properties: Mapping[str, Any] = schema.get("properties", {})
    entry = properties.get(name)
    if entry is None:
        extra = schema.get("additionalProperties", True)
        entry = extra if isinstance(extra, Mapping) else {}
    kind = entry.get("x-kind", "literal")
    if kind not in ("expression", "template", "literal"):
        return "literal"
    return kind  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class TemplatePart:
    """A piece of a template: literal ``text``, or an expression ``source`` at ``offset``."""

    text: str | None = None
    source: str | None = None
    offset: int = 0


def parse_template(text: str) -> list[TemplatePart]:
    """Split ``"a {x} b"`` into text and expression parts; ``{{``/``}}`` are literal braces.

    Raises ``ValueError(message, offset)`` for an unclosed ``{`` or a stray ``}``.
    """
    parts: list[TemplatePart] = []
    buffer: list[str] = []
    index = 0
    length = len(text)
    while index < length:
        char = text[index]
        if char == "{" and text.startswith("{{", index):
            buffer.append("{")
            index += 2
        elif char == "}" and text.startswith("}}", index):
            buffer.append("}")
            index += 2
        elif char == "{":
            end = text.find("}", index + 1)
            if end == -1:
                raise ValueError("unclosed '{' in template", index)
            if buffer:
                parts.append(TemplatePart(text="".join(buffer)))
                buffer = []
            source = text[index + 1 : end]
            if not source.strip():
                raise ValueError("empty '{}' in template", index)
            parts.append(TemplatePart(source=source, offset=index + 1))
            index = end + 1
        elif char == "}":
            raise ValueError("stray '}' in template; write '}}' for a literal brace", index)
        else:
            buffer.append(char)
            index += 1
    if buffer:
        parts.append(TemplatePart(text="".join(buffer)))
    return parts
