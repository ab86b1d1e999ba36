"""The rule file format as plain values, and a reader that needs no pydantic for a valid file.

:mod:`reclaim.rules.model` describes the format as pydantic models: they produce the error
messages of an invalid file and the JSON Schema of ``reclaim rules schema``. Importing pydantic
and building those models costs more than checking a small rule file (issue 9, item 13), so
each class here first reads a mapping itself and takes it only when it is plainly valid:
every key known, every value of exactly the type the model's strict mode accepts. Anything
else (a wrong type, an unknown key, both ``id`` and ``name``, text pydantic would refuse) makes
the reader answer ``None``, and the checker validates that mapping with the pydantic model as
before, so an invalid file gets the same errors. The reader is never more lenient than the
model and gives the same values; a test holds both on generated documents.
"""

from __future__ import annotations

__all__ = [
    "KINDS",
    "MODES",
    "Kind",
    "Mode",
    "RuleSetHeader",
    "RuleSpec",
    "RuleTestCase",
    "RuleTestFileHeader",
]

import datetime
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal, Self, get_args

Kind = Literal["savings", "routing", "policy", "plain"]
Mode = Literal["all", "first", "ordered"]
Verdict = Literal["allow", "warn", "deny"]

KINDS: frozenset[str] = frozenset(get_args(Kind))
MODES: frozenset[str] = frozenset(get_args(Mode))
_VERDICTS: frozenset[str] = frozenset(get_args(Verdict))

# A value the plain reader does not take: the pydantic model decides.
_REFUSED = object()


def _is_text(value: Any) -> bool:
    """A string pydantic's strict mode takes: exactly ``str``, and encodable (pydantic refuses
    lone surrogates, which a YAML escape such as ``"\\ud800"`` can produce)."""
    if type(value) is not str:
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(value: Any) -> Any:
    return value if _is_text(value) else _REFUSED


def _optional_text(value: Any) -> Any:
    return None if value is None else _text(value)


def _identifier(value: Any) -> Any:
    return value if _is_text(value) and value else _REFUSED


def _flag(value: Any) -> Any:
    return value if type(value) is bool else _REFUSED


def _integer(value: Any) -> Any:
    # Strict mode refuses a bool where an int is expected; bool is a subclass of int.
    return value if type(value) is int else _REFUSED


def _mapping(value: Any) -> Any:
    """``dict[str, Any]``: a copy, as pydantic gives, with the same values."""
    if type(value) is not dict or not all(_is_text(key) for key in value):
        return _REFUSED
    return dict(value)


def _optional_mapping(value: Any) -> Any:
    return None if value is None else _mapping(value)


def _texts(value: Any) -> Any:
    """``list[str]``: a copy."""
    if type(value) is not list or not all(_is_text(item) for item in value):
        return _REFUSED
    return list(value)


def _optional_texts(value: Any) -> Any:
    return None if value is None else _texts(value)


def _condition(value: Any) -> Any:
    return value if type(value) is bool or _is_text(value) else _REFUSED


def _one_of(choices: frozenset[str]) -> Any:
    def read(value: Any) -> Any:
        return value if type(value) is str and value in choices else _REFUSED

    return read


def _optional_verdict(value: Any) -> Any:
    return None if value is None else _one_of(_VERDICTS)(value)


def _version(value: Any) -> Any:
    return value if type(value) is int and value == 1 else _REFUSED


def _mapping_of_mappings(value: Any) -> Any:
    """``dict[str, dict[str, Any]]``: copies of the outer and inner mappings."""
    outer = _mapping(value)
    if outer is _REFUSED:
        return _REFUSED
    for key, inner in outer.items():
        copied = _mapping(inner)
        if copied is _REFUSED:
            return _REFUSED
        outer[key] = copied
    return outer


def _optional_instant(value: Any) -> Any:
    # pydantic's strict mode returns a datetime as it is.
    return value if value is None or type(value) is datetime.datetime else _REFUSED


def _spellings(
    readers: dict[str, Any], aliases: dict[str, tuple[str, ...]]
) -> dict[str, tuple[str, Any]]:
    """Each key a mapping may use: the field it gives and the function reading its value."""
    return {
        spelling: (name, read)
        for name, read in readers.items()
        for spelling in aliases.get(name, (name,))
    }


def _read(cls: type[Any], raw: Any, spellings: dict[str, tuple[str, Any]]) -> Any:
    """An instance of ``cls`` from the mapping ``raw``, or None when ``raw`` is not plainly
    valid: a key that is not one of ``spellings`` (see :func:`_spellings`), two spellings of
    one field, a value its reader refuses, or a required field missing."""
    if type(raw) is not dict:
        return None
    values: dict[str, Any] = {}
    for key, value in raw.items():
        known = spellings.get(key) if type(key) is str else None
        if known is None:
            return None
        name, read = known
        if name in values:
            return None
        value = read(value)
        if value is _REFUSED:
            return None
        values[name] = value
    try:
        return cls(**values)
    except TypeError:  # a required field is missing
        return None


def _from_model(cls: type[Any], model: Any) -> Any:
    return cls(**{item.name: getattr(model, item.name) for item in fields(cls)})


class _PlainSpec:
    """What the plain readers of the format share: ``read`` a mapping that is plainly valid
    (else None: the pydantic model decides and words the errors), or take a model's values."""

    __slots__ = ()
    spellings: ClassVar[dict[str, tuple[str, Any]]]

    @classmethod
    def read(cls, raw: Any) -> Self | None:
        result: Self | None = _read(cls, raw, cls.spellings)
        return result

    @classmethod
    def from_model(cls, model: Any) -> Self:
        result: Self = _from_model(cls, model)
        return result


@dataclass(frozen=True, slots=True)
class RuleSpec(_PlainSpec):
    """One rule as written in the file (:class:`~reclaim.rules.model.RuleModel`)."""

    id: str
    when: str | bool
    description: str = ""
    action: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    priority: int = 0
    tags: list[str] = field(default_factory=list)
    enabled: bool = True


_RULE_READERS = {
    "id": _identifier,
    "when": _condition,
    "description": _text,
    "action": _optional_text,
    "params": _mapping,
    "priority": _integer,
    "tags": _texts,
    "enabled": _flag,
}
_RULE_SPELLINGS = _spellings(_RULE_READERS, {"id": ("id", "name"), "when": ("when", "condition")})
RuleSpec.spellings = _RULE_SPELLINGS


@dataclass(frozen=True, slots=True)
class RuleSetHeader(_PlainSpec):
    """Everything of a rule file but its rules and tests
    (:class:`~reclaim.rules.model.RuleSetModel`)."""

    version: int = 1
    kind: Kind = "plain"
    name: str | None = None
    description: str = ""
    mode: Mode = "all"
    facts: dict[str, Any] | None = None
    vars: dict[str, Any] = field(default_factory=dict)


_HEADER_READERS = {
    "version": _version,
    "kind": _one_of(KINDS),
    "name": _optional_text,
    "description": _text,
    "mode": _one_of(MODES),
    "facts": _optional_mapping,
    "vars": _mapping,
}
_HEADER_SPELLINGS = _spellings(_HEADER_READERS, {})
RuleSetHeader.spellings = _HEADER_SPELLINGS


@dataclass(frozen=True, slots=True)
class RuleTestCase(_PlainSpec):
    """One rule test (:class:`~reclaim.rules.model.RuleTestCaseModel`)."""

    name: str
    fact: dict[str, Any]
    fired: list[str] | None = None
    not_fired: list[str] = field(default_factory=list)
    actions: dict[str, dict[str, Any]] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    verdict: Verdict | None = None
    now: datetime.datetime | None = None


_CASE_READERS = {
    "name": _identifier,
    "fact": _mapping,
    "fired": _optional_texts,
    "not_fired": _texts,
    "actions": _mapping_of_mappings,
    "context": _mapping,
    "verdict": _optional_verdict,
    "now": _optional_instant,
}
_CASE_SPELLINGS = _spellings(_CASE_READERS, {})
RuleTestCase.spellings = _CASE_SPELLINGS


@dataclass(frozen=True, slots=True)
class RuleTestFileHeader(_PlainSpec):
    """A ``*.tests.yaml`` file but its tests (:class:`~reclaim.rules.model.RuleTestFileModel`)."""

    rules: str | None = None


_TEST_FILE_SPELLINGS = _spellings({"rules": _optional_text}, {})
RuleTestFileHeader.spellings = _TEST_FILE_SPELLINGS
