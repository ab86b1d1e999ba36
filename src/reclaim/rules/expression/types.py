"""Types of fact fields and the declared schema of the facts an expression reads."""

from __future__ import annotations

__all__ = [
    "FactSchema",
    "FieldSpec",
    "FieldType",
    "comparable",
    "type_of_value",
    "unify",
    "unify_all",
]

import difflib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from reclaim.rules.expression.errors import ExpressionError


class FieldType(StrEnum):
    """The static type of a value. ``ANY`` means not declared: checked only at evaluation."""

    NUMBER = "number"
    INTEGER = "integer"
    STRING = "string"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    LIST = "list"
    MAP = "map"
    ANY = "any"


# Spellings people bring from JSON Schema, Python and SQL; each maps to one FieldType.
_ALIASES: dict[str, FieldType] = {
    "float": FieldType.NUMBER,
    "double": FieldType.NUMBER,
    "decimal": FieldType.NUMBER,
    "int": FieldType.INTEGER,
    "str": FieldType.STRING,
    "text": FieldType.STRING,
    "bool": FieldType.BOOLEAN,
    "timestamp": FieldType.DATETIME,
    "array": FieldType.LIST,
    "dict": FieldType.MAP,
    "object": FieldType.MAP,
    "struct": FieldType.MAP,
}

NUMERIC = frozenset({FieldType.NUMBER, FieldType.INTEGER})


def parse_field_type(value: str | FieldType, *, field: str) -> FieldType:
    """The FieldType named by ``value`` (a FieldType, its value, or a common alias)."""
    if isinstance(value, FieldType):
        return value
    if not isinstance(value, str):
        raise ExpressionError(
            f"field {field!r}: type must be a string or a mapping of sub-fields, not "
            f"{type(value).__name__}",
            fix="write one of " + ", ".join(t.value for t in FieldType),
        )
    key = value.strip().lower()
    if key in FieldType._value2member_map_:
        return FieldType(key)
    if key in _ALIASES:
        return _ALIASES[key]
    names = [t.value for t in FieldType]
    close = difflib.get_close_matches(key, names + list(_ALIASES), n=1)
    fix = f"did you mean {close[0]!r}?" if close else "write one of " + ", ".join(names)
    raise ExpressionError(f"field {field!r}: unknown type {value!r}", fix=fix)


@dataclass(frozen=True)
class FieldSpec:
    """One declared field: its type and, for a map with declared keys, their schema."""

    type: FieldType
    schema: FactSchema | None = None  # for MAP: the declared keys; None = any key allowed


class FactSchema:
    """The declared fields of the facts. Nested maps may declare their own keys.

    A field not declared is an error at compile time ("did you mean …?"). A map field declared
    as plain ``"map"`` accepts any key, typed ``any``.
    """

    __slots__ = ("_fields", "names")

    def __init__(self, fields: Mapping[str, FieldSpec]) -> None:
        self._fields: dict[str, FieldSpec] = dict(fields)
        self.names: frozenset[str] = frozenset(self._fields)

    @classmethod
    def from_mapping(
        cls, fields: Mapping[str, str | FieldType | Mapping[str, object]], *, _prefix: str = ""
    ) -> FactSchema:
        """Build a schema from ``{"cpu_avg": "number", "tags": {"owner": "string"}}``.

        A nested mapping declares a map with those keys. Raises ExpressionError on an unknown
        type name, naming the field.
        """
        specs: dict[str, FieldSpec] = {}
        for name, value in fields.items():
            if not isinstance(name, str) or not name:
                raise ExpressionError(
                    f"schema field names must be non-empty strings, not {name!r}",
                    fix="quote the field name",
                )
            path = _prefix + name
            if isinstance(value, Mapping):
                nested = cls.from_mapping(value, _prefix=path + ".")  # type: ignore[arg-type]
                specs[name] = FieldSpec(FieldType.MAP, nested)
            else:
                specs[name] = FieldSpec(parse_field_type(value, field=path))
        return cls(specs)

    @classmethod
    def from_polars(cls, schema: Mapping[str, Any]) -> FactSchema:
        """The schema of a Polars frame (``frame.schema``): struct columns become maps with
        their fields declared; dtypes without a language type become ``any``."""
        import polars as pl

        from reclaim.rules.expression.columnar import dtype_to_field_type

        specs: dict[str, FieldSpec] = {}
        for name, dtype in schema.items():
            instance = dtype if isinstance(dtype, pl.DataType) else dtype()
            if isinstance(instance, pl.Struct):
                nested = {field.name: field.dtype for field in instance.fields}
                specs[name] = FieldSpec(FieldType.MAP, cls.from_polars(nested))
            else:
                specs[name] = FieldSpec(dtype_to_field_type(instance))
        return cls(specs)

    def get(self, name: str) -> FieldSpec | None:
        """The declared field ``name``, or None."""
        return self._fields.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._fields

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def items(self) -> Iterator[tuple[str, FieldSpec]]:
        """(name, spec) pairs in declaration order."""
        return iter(self._fields.items())

    def to_mapping(self) -> dict[str, object]:
        """The inverse of ``from_mapping``: type names, nested dicts for declared maps."""
        out: dict[str, object] = {}
        for name, spec in self._fields.items():
            out[name] = spec.schema.to_mapping() if spec.schema is not None else spec.type.value
        return out

    def suggest(self, name: str) -> str | None:
        """The declared name closest to ``name``, for "did you mean …?"."""
        close = difflib.get_close_matches(name, list(self._fields), n=1, cutoff=0.6)
        return close[0] if close else None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FactSchema) and self._fields == other._fields

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._fields)))

    def __repr__(self) -> str:
        return f"FactSchema({self.to_mapping()!r})"


# --- type rules shared by the checker ---


def comparable(left: FieldType, right: FieldType) -> bool:
    """Whether values of the two types may be compared with == (numbers mix; any mixes)."""
    if FieldType.ANY in (left, right) or left == right:
        return True
    return left in NUMERIC and right in NUMERIC


def type_of_value(value: Any) -> FieldType:
    """The type of a Python value given as a literal or constant (ANY for lists, maps, None)."""
    if isinstance(value, bool):
        return FieldType.BOOLEAN
    if isinstance(value, int):
        return FieldType.INTEGER
    if isinstance(value, float):
        return FieldType.NUMBER
    if isinstance(value, str):
        return FieldType.STRING
    if isinstance(value, datetime | date):
        return FieldType.DATETIME
    return FieldType.ANY


def unify_all(types: Sequence[FieldType]) -> FieldType | None:
    """The one type all of ``types`` can be, or None if they conflict."""
    if not types:
        return FieldType.ANY
    result: FieldType | None = types[0]
    for other in types[1:]:
        if result is None:
            return None
        result = unify(result, other)
    return result


def unify(left: FieldType, right: FieldType) -> FieldType | None:
    """The type both can be (integer and number give number), or None if they conflict."""
    if left == right:
        return left
    if FieldType.ANY in (left, right):
        return FieldType.ANY
    if left in NUMERIC and right in NUMERIC:
        return FieldType.NUMBER
    return None
