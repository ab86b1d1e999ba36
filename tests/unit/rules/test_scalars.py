"""Plain YAML scalars resolved and built without ruamel.yaml (reclaim.rules.scalars) come out
as ruamel.yaml's own resolver and safe constructor give them."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from ruamel.yaml.nodes import ScalarNode

from reclaim.rules.scalars import NOT_PLAIN, RESOLVERS, STR, implicit_tag, plain_value

_YAML = YAML(typ="safe", pure=True)


def _ruamel_tag(value: str, implicit: tuple[bool, bool]) -> str:
    resolved = _YAML.resolver.resolve(ScalarNode, value, implicit)
    return str(getattr(resolved, "value", resolved))


def test_the_table_is_ruamel_yamls_for_yaml_1_2() -> None:
    theirs = _YAML.resolver.versioned_resolver
    assert _YAML.resolver.processing_version == (1, 2)
    assert set(RESOLVERS) == set(theirs)
    for first, ours in RESOLVERS.items():
        expected = [(tag, regexp.pattern, regexp.flags) for tag, regexp in theirs[first]]
        assert [(tag, pattern.pattern, pattern.flags) for tag, pattern in ours] == expected


# Text made of what the patterns look at: digits, signs, dots, exponents, base prefixes,
# underscores, the words of booleans, null and infinity, and the separators of timestamps.
_WORDS = ["true", "True", "FALSE", "null", "Null", "NULL", "inf", ".inf", ".NaN", "name", "yes"]
_PIECES = st.sampled_from(
    [*"0123456789", *"+-._eExXoOb:~<=!&* tTZ", *_WORDS, "0x", "0o", "2026-01-02", "T10:20:30", "é"]
)
_SCALARS = st.lists(_PIECES, max_size=6).map("".join)


@settings(max_examples=500)
@given(_SCALARS, st.booleans())
@example("", True)
@example("-0", True)
@example("0" * 30, True)
@example("9" * 18, True)
@example("-" + "9" * 18, True)
@example("1" * 5000, True)
def test_tags_and_values_are_ruamel_yamls(text: str, plain: bool) -> None:
    implicit = (plain, not plain)
    tag = implicit_tag(text, implicit)
    assert tag == _ruamel_tag(text, implicit)
    if not plain:
        assert tag == STR
        return
    ours = plain_value(tag, text)
    if ours is NOT_PLAIN:
        return
    constructor = _YAML.constructor
    node = ScalarNode(tag, text)
    theirs: Any = constructor.yaml_constructors[tag](constructor, node)
    assert type(ours) is type(theirs)
    assert ours == theirs or (isinstance(ours, float) and math.isnan(ours) and math.isnan(theirs))


def test_what_is_not_plain_is_left_to_the_constructor() -> None:
    # Floats, timestamps, other spellings of integers, and integers too long for int() (the
    # constructor's error is reported as before).
    for text in ("1.5", "0x1f", "1_000", "007", "2026-01-02", ".inf", "1" * 5000):
        assert plain_value(implicit_tag(text, (True, False)), text) is NOT_PLAIN, text
