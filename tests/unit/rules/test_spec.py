"""The plain reader of the rule file format (reclaim.rules.spec) agrees with the pydantic
models (reclaim.rules.model): it takes only what the model takes, and gives the same values.

The reader lets a valid file be checked without importing pydantic (issue 9, item 13); any
mapping it does not take is validated by the model, which words the errors.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from reclaim.rules import load_rules_text
from reclaim.rules.model import RuleModel, RuleSetModel, RuleTestCaseModel, RuleTestFileModel
from reclaim.rules.spec import RuleSetHeader, RuleSpec, RuleTestCase, RuleTestFileHeader

# (plain class, model, fields of the model the plain class leaves to the checker)
PAIRS: list[tuple[Any, type[BaseModel], set[str]]] = [
    (RuleSpec, RuleModel, set()),
    (RuleSetHeader, RuleSetModel, {"rules", "tests"}),
    (RuleTestCase, RuleTestCaseModel, set()),
    (RuleTestFileHeader, RuleTestFileModel, {"tests"}),
]


@pytest.mark.parametrize(("plain", "model", "left"), PAIRS)
def test_each_plain_class_has_the_models_fields_and_defaults(
    plain: Any, model: type[BaseModel], left: set[str]
) -> None:
    fields = {field.name: field for field in dataclasses.fields(plain)}
    assert set(fields) == set(model.model_fields) - left
    for name, field in fields.items():
        info = model.model_fields[name]
        if info.is_required():
            assert field.default is dataclasses.MISSING, name
            assert field.default_factory is dataclasses.MISSING, name
        elif field.default_factory is not dataclasses.MISSING:
            assert field.default_factory() == info.get_default(call_default_factory=True), name
        else:
            assert field.default == info.get_default(call_default_factory=True), name


_NOW = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)

# Values of every type the YAML reader gives, and the edges of pydantic's strict mode: bools
# where ints are expected, empty text, lone surrogates (which pydantic refuses), big integers.
_SCALARS = st.one_of(
    st.sampled_from(
        [
            "",
            "x",
            "idle",
            "cpu_avg < 10",
            "\ud800",
            "é",
            "all",
            "first",
            "ordered",
            "savings",
            "policy",
            "deny",
            "allow",
            "maybe",
            True,
            False,
            None,
            0,
            1,
            2,
            -3,
            2**70,
            1.0,
            0.5,
            _NOW,
            datetime.datetime(2026, 1, 2),
        ]
    ),
    st.text(max_size=4),
    st.integers(),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.one_of(st.text(max_size=3), st.sampled_from([1, "\ud800"])), inner, max_size=3
        ),
    ),
    max_leaves=6,
)


_TEXTS = st.one_of(
    st.sampled_from(["", "x", "idle", "\ud800", "é", "all", "deny"]), st.text(max_size=4)
)
_MAPPINGS = st.dictionaries(st.one_of(st.text(max_size=3), st.just(1)), _VALUES, max_size=3)


def _mapping(
    fields: dict[str, st.SearchStrategy[Any]],
    required: tuple[tuple[str, ...], ...] = (),
) -> st.SearchStrategy[dict[Any, Any]]:
    """Mappings with some of ``fields``, each valued mostly as the format wants and sometimes
    anything. Mostly one spelling of each group in ``required`` is there; some mappings have
    unknown keys."""
    known = {name: st.one_of(values, values, values, _VALUES) for name, values in fields.items()}
    unknown: dict[Any, st.SearchStrategy[Any]] = {"extra": _VALUES, 7: _VALUES}

    @st.composite
    def build(draw: st.DrawFn) -> dict[Any, Any]:
        raw = draw(st.fixed_dictionaries({}, optional=known))
        for spellings in required:
            chosen = draw(st.sampled_from(spellings))
            for spelling in spellings:
                if spelling != chosen and draw(st.integers(0, 9)) > 0:
                    raw.pop(spelling, None)
            if chosen not in raw and draw(st.integers(0, 9)) > 0:
                raw[chosen] = draw(known[chosen])
        if draw(st.integers(0, 3)) == 0:
            raw.update(draw(st.fixed_dictionaries({}, optional=unknown)))
        return raw

    return build()


_RULE = _mapping(
    {
        "id": _TEXTS,
        "name": _TEXTS,
        "when": st.one_of(_TEXTS, st.booleans()),
        "condition": _TEXTS,
        "description": _TEXTS,
        "action": st.one_of(st.none(), _TEXTS),
        "params": _MAPPINGS,
        "priority": st.integers(),
        "tags": st.lists(_TEXTS, max_size=3),
        "enabled": st.booleans(),
    },
    required=(("id", "name"), ("when", "condition")),
)
_HEADER = _mapping(
    {
        "version": st.sampled_from([1, 2, True]),
        "kind": st.sampled_from(["savings", "routing", "policy", "plain", "other"]),
        "name": st.one_of(st.none(), _TEXTS),
        "description": _TEXTS,
        "mode": st.sampled_from(["all", "first", "ordered", "last"]),
        "facts": st.one_of(st.none(), _MAPPINGS),
        "vars": _MAPPINGS,
    }
)
_CASE = _mapping(
    {
        "name": _TEXTS,
        "fact": _MAPPINGS,
        "fired": st.one_of(st.none(), st.lists(_TEXTS, max_size=3)),
        "not_fired": st.lists(_TEXTS, max_size=3),
        "actions": st.dictionaries(_TEXTS, st.one_of(_MAPPINGS, _VALUES), max_size=2),
        "context": _MAPPINGS,
        "verdict": st.one_of(st.none(), st.sampled_from(["allow", "warn", "deny", "block"])),
        "now": st.one_of(st.none(), st.just(_NOW), st.datetimes(), st.dates()),
    },
    required=(("name",), ("fact",)),
)
_TEST_FILE = _mapping({"rules": st.one_of(st.none(), _TEXTS)})


def _plain_values(plain: Any) -> dict[str, Any]:
    return {field.name: getattr(plain, field.name) for field in dataclasses.fields(plain)}


def _agrees(plain_class: Any, model: type[BaseModel], raw: Any, extra: dict[str, Any]) -> None:
    """When the plain reader takes ``raw``, the model takes it too, with the same values."""
    plain = plain_class.read(raw)
    if plain is None:
        return
    validated = model.model_validate({**raw, **extra})
    for name, value in _plain_values(plain).items():
        expected = getattr(validated, name)
        assert value == expected, name
        assert type(value) is type(expected), name


@settings(max_examples=400)
@given(_RULE)
def test_a_rule_the_reader_takes_the_model_takes_alike(raw: dict[Any, Any]) -> None:
    _agrees(RuleSpec, RuleModel, raw, {})


@given(_HEADER)
def test_a_header_the_reader_takes_the_model_takes_alike(raw: dict[Any, Any]) -> None:
    _agrees(RuleSetHeader, RuleSetModel, raw, {"rules": []})


@settings(max_examples=400)
@given(_CASE)
def test_a_test_case_the_reader_takes_the_model_takes_alike(raw: dict[Any, Any]) -> None:
    _agrees(RuleTestCase, RuleTestCaseModel, raw, {})


@given(_TEST_FILE)
def test_a_test_file_header_the_reader_takes_the_model_takes_alike(raw: dict[Any, Any]) -> None:
    _agrees(RuleTestFileHeader, RuleTestFileModel, raw, {"tests": []})


@pytest.mark.parametrize(
    "raw",
    [
        {"id": "a", "name": "b", "when": "x"},  # both spellings: the model refuses "name"
        {"id": "a", "when": "x", "priority": True},  # strict: a bool is not an int
        {"id": "\ud800", "when": "x"},  # a lone surrogate is not text to pydantic
        {"id": "", "when": "x"},  # ids are not empty
        {"id": "a", "when": "x", "params": {1: "one"}},  # parameter names are text
        {"id": "a"},  # no condition
        {"id": "a", "when": "x", "tag": ["t"]},  # an unknown key
        ["id", "a"],  # not a mapping
    ],
)
def test_the_reader_leaves_what_the_model_refuses_to_the_model(raw: Any) -> None:
    assert RuleSpec.read(raw) is None
    with pytest.raises(ValidationError):
        RuleModel.model_validate(raw)


def test_a_valid_file_is_read_without_the_model() -> None:
    raw = {
        "name": "idle",
        "condition": "cpu_avg < 10",
        "action": "notify",
        "params": {"to": "ops"},
        "priority": 2,
        "tags": ["compute"],
        "enabled": False,
        "description": "idle machines",
    }
    assert RuleSpec.read(raw) == RuleSpec.from_model(RuleModel.model_validate(raw))
    header = {"version": 1, "kind": "savings", "mode": "first", "facts": {"cpu_avg": "number"}}
    assert RuleSetHeader.read(header) == RuleSetHeader.from_model(
        RuleSetModel.model_validate({**header, "rules": []})
    )
    case = {"name": "t", "fact": {"cpu_avg": 1}, "fired": ["idle"], "now": _NOW}
    assert RuleTestCase.read(case) == RuleTestCase.from_model(
        RuleTestCaseModel.model_validate(case)
    )


def test_rule_sets_carry_their_tests_as_plain_values() -> None:
    ruleset = load_rules_text(
        "rules:\n  - id: idle\n    when: cpu_avg < 10\n"
        "tests:\n  - name: low\n    fact: {cpu_avg: 1}\n    fired: [idle]\n"
    )
    assert ruleset.tests == (RuleTestCase(name="low", fact={"cpu_avg": 1}, fired=["idle"]),)
