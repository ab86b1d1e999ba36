"""The YAML reader: positions, duplicate keys, and hostile documents."""

from __future__ import annotations

import datetime

import pytest

from reclaim.rules.errors import (
    DuplicateKeyError,
    RuleFileError,
    YamlLimitError,
    YamlSyntaxError,
)
from reclaim.rules.source import YamlLimits, load_yaml

TEXT = """\
kind: savings
rules:
  - id: a
    when: "cpu < 10"
    params: {x: 1, y: [true, null, 2024-01-02]}
  - id: b
    when: |
      cpu < 10 and
      mem < 5
"""


def test_values_are_plain_python() -> None:
    doc = load_yaml(TEXT, "r.yaml")
    rules = doc.data["rules"]
    assert rules[0]["params"] == {"x": 1, "y": [True, None, datetime.datetime(2024, 1, 2)]}
    assert rules[1]["when"] == "cpu < 10 and\nmem < 5\n"


def test_every_key_and_value_has_its_position() -> None:
    doc = load_yaml(TEXT, "r.yaml")
    assert str(doc.location(("rules", 0, "when"), key=True)) == "r.yaml:4:5"
    assert str(doc.location(("rules", 0, "when"))) == "r.yaml:4:11"
    assert str(doc.location(("rules", 0, "params", "y", 1))) == "r.yaml:5:30"
    # Unknown paths fall back to the nearest recorded parent.
    assert str(doc.location(("rules", 0, "params", "zzz"))) == "r.yaml:5:13"


def test_text_location_skips_quotes_and_block_indicators() -> None:
    doc = load_yaml(TEXT, "r.yaml")
    assert str(doc.text_location(("rules", 0, "when"))) == "r.yaml:4:12"
    assert str(doc.text_location(("rules", 1, "when"))) == "r.yaml:8:7"


def test_every_duplicate_key_is_reported_with_both_lines() -> None:
    with pytest.raises(RuleFileError) as caught:
        load_yaml("a: 1\nb: {x: 1, x: 2}\na: 3\n", "d.yaml")
    errors = caught.value.errors
    assert [type(error) for error in errors] == [DuplicateKeyError, DuplicateKeyError]
    assert str(errors[0]).startswith("d.yaml:2:11: duplicate key 'x' (first at line 2)")
    assert str(errors[1]).startswith("d.yaml:3:1: duplicate key 'a' (first at line 1)")


def test_syntax_error_names_line_and_column() -> None:
    with pytest.raises(YamlSyntaxError) as caught:
        load_yaml("rules:\n  - id: [a, b\n  - id: c\n", "s.yaml")
    assert str(caught.value).startswith("s.yaml:3:")
    assert "YAML syntax error" in str(caught.value)


def test_merge_keys_and_aliases_share_values() -> None:
    doc = load_yaml("base: &b {team: web, project: WEB}\nx:\n  <<: *b\n  project: OPS\n")
    assert doc.data["x"] == {"team": "web", "project": "OPS"}


def test_more_than_one_document_is_rejected() -> None:
    with pytest.raises(YamlSyntaxError, match="more than one YAML document"):
        load_yaml("a: 1\n---\nb: 2\n")


def test_custom_tags_are_rejected() -> None:
    with pytest.raises(YamlSyntaxError, match="unsupported YAML tag"):
        load_yaml("a: !!python/object:os.system x\n")


def test_billion_laughs_is_rejected_before_it_expands() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, 10):
        previous, name = chr(96 + level), chr(97 + level)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    # Refused by counting what the aliases would repeat, not by building it (speed: bench/).
    with pytest.raises(YamlLimitError, match="expands to more than") as caught:
        load_yaml("\n".join(lines) + "\n", "lol.yaml")
    assert str(caught.value).startswith("lol.yaml:")


def test_deep_nesting_is_rejected_without_recursion() -> None:
    with pytest.raises(YamlLimitError, match="nests deeper than 64"):
        load_yaml("a: " + "[" * 5000 + "]" * 5000 + "\n")


def test_huge_file_is_rejected_before_parsing() -> None:
    with pytest.raises(YamlLimitError, match="more than the 1,000 a rule file may be"):
        load_yaml("a: 1\n" * 1000, "big.yaml", limits=YamlLimits(max_bytes=1000))


def test_undefined_alias_is_a_syntax_error() -> None:
    with pytest.raises(YamlSyntaxError):
        load_yaml("a: *nothing\n")
