"""Bounded cost for any rule file: aliases, concatenation, error reporting, special files,
huge values and invisible characters (issue 9, items 5, 6 and 8)."""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from reclaim.rules import (
    ExpressionError,
    RuleFileError,
    YamlSyntaxError,
    load_rules,
    load_rules_text,
)
from reclaim.rules.expression import Limits
from reclaim.rules.source import YamlLimits, load_yaml


def _errors(text: str, path: str = "r.yaml") -> list[str]:
    with pytest.raises(RuleFileError) as caught:
        load_rules_text(text, path)
    return [str(error) for error in caught.value.errors]


# --- item 5: aliases count by the bytes they repeat; '+' of constants is bounded ----------------


def test_aliases_of_one_long_string_are_counted_by_the_text_they_repeat() -> None:
    # 61 nodes, far under the node limit, but 6 MB of text once every alias is expanded.
    text = (
        "vars:\n"
        f"  s: &s {'x' * 100_000}\n"
        "  big: [" + ", ".join(["*s"] * 60) + "]\n"
        "rules:\n  - id: r\n    when: name in big\n"
    )
    assert len(text) < 101_000
    (error,) = _errors(text)
    assert error.startswith("r.yaml:3:")
    assert "expands to more than 1,000,000 characters of text" in error
    assert "remove aliases that repeat long values" in error


def test_aliases_within_the_limit_still_share_their_value() -> None:
    document = load_yaml("a: &a [x, y]\nb: *a\nc: *a\n")
    assert document.data["b"] is document.data["a"]


def test_concatenating_long_constants_is_refused_at_check_time() -> None:
    text = (
        f"vars:\n  s: {'x' * 60_000}\n"
        "rules:\n  - id: r\n    when: name == s + s\n  - id: ok\n    when: name == s + name\n"
    )
    (error,) = _errors(text)
    assert error.startswith("r.yaml:5:19: '+' here joins constants of 120,000 characters")
    assert "the limit is 100,000" in error


def test_concatenation_through_branches_counts_the_longest() -> None:
    text = (
        f"vars:\n  s: {'x' * 60_000}\n"
        "rules:\n  - id: r\n    when: name == (s if flag else 'a') + coalesce(s, 'b')\n"
    )
    (error,) = _errors(text)
    assert "joins constants of 120,000 characters" in error


# --- item 6: locating N errors does not split the file N times ---------------------------------


class _CountingText(str):
    splits = 0

    def splitlines(self, keepends: bool = False) -> list[str]:
        type(self).splits += 1
        return super().splitlines(keepends)


def test_many_errors_are_located_with_one_pass_over_the_file() -> None:
    rules = "".join(f"  - id: r{i}\n    when: cpu_avg <\n" for i in range(300))
    text = _CountingText("rules:\n" + rules)
    _CountingText.splits = 0
    with pytest.raises(RuleFileError) as caught:
        load_rules_text(text, "r.yaml")
    errors = caught.value.errors
    assert len(errors) == 300
    assert str(errors[-1]).startswith("r.yaml:601:")
    assert _CountingText.splits <= 1


# --- item 8: only regular files; huge and deep values; bidi controls ---------------------------


def test_a_symlink_to_a_device_is_refused_without_reading_it(tmp_path: Path) -> None:
    link = tmp_path / "rules.yaml"
    link.symlink_to("/dev/zero")
    with pytest.raises(RuleFileError) as caught:
        load_rules(link)
    assert [str(error) for error in caught.value.errors] == [
        f"{link}: the rule file is not a regular file but a character device; give the path "
        "of a regular file, or of a symlink to one"
    ]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "rules.yaml"
    os.mkfifo(fifo)
    outcome: list[Any] = []

    def load() -> None:
        try:
            load_rules(fifo)
        except RuleFileError as exc:
            outcome.append(exc)

    # Opening a FIFO for reading blocks until a writer comes: run it aside so that a
    # regression fails this test instead of hanging the suite.
    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(timeout=20)
    if worker.is_alive():
        with fifo.open("w"):  # release the blocked open so the thread ends
            pass
        pytest.fail("load_rules blocked on a FIFO")
    (error,) = outcome
    assert "is not a regular file but a FIFO" in str(error)


def test_a_folder_given_as_a_rule_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RuleFileError, match="not a regular file but a folder"):
        load_rules(tmp_path)


def test_a_huge_integer_is_not_echoed_whole_into_the_error() -> None:
    with pytest.raises(YamlSyntaxError) as caught:
        load_yaml("vars:\n  n: " + "9" * 900_000 + "\n", "r.yaml")
    message = str(caught.value)
    assert len(message) < 400
    assert message.startswith("r.yaml:2:6: cannot read '99999999999999999999'…")
    assert "(900,000 characters) as int" in message


def test_explain_shows_integers_past_4300_digits_and_deep_values() -> None:
    ruleset = load_rules_text("rules:\n  - id: big\n    when: x > 5\n  - id: deep\n    when: y\n")
    deep: list[Any] = []
    inner = deep
    for _ in range(5_000):
        inner.append([])
        inner = inner[0]
    huge = 7 * 10**5_000
    explanation = ruleset.explain({"x": huge, "y": deep})
    rendered = explanation.render()
    assert "x > 5  → <integer of about 5,001 digits> > 5 ✓" in rendered
    assert len(rendered) < 2_000
    data = json.loads(json.dumps(explanation.to_dict()))
    assert data["rules"][0]["tree"]["actual"] == "<integer of about 5,001 digits>"
    assert data["context"]["x"] == "<integer of about 5,001 digits>"


@pytest.mark.parametrize("char", ["\u202e", "\u2066", "\u200f"])
def test_bidi_control_characters_are_refused_in_expressions(char: str) -> None:
    text = f"rules:\n  - id: r\n    when: \"name == 'admin{char}' and x > 1\"\n"
    (error,) = _errors(text)
    code = f"\\u{ord(char):04x}"
    assert error.startswith(
        f"r.yaml:3:26: expression contains the invisible bidirectional control character "
        f"U+{ord(char):04X}"
    )
    assert error.endswith(f"write the escape '{code}' inside the quotes")


def test_a_bidi_control_written_as_an_escape_is_accepted() -> None:
    ruleset = load_rules_text("rules:\n  - id: r\n    when: name == 'a\\u202eb'\n")
    assert ruleset.evaluate({"name": "a\u202eb"}).fired == ["r"]


def test_bidi_check_applies_to_a_bare_expression() -> None:
    from reclaim.rules import compile_expression

    with pytest.raises(ExpressionError, match="U\\+202E"):
        compile_expression("x == '\u202e'")


# --- item 7: a total budget per file, refused up front with the limit it passes -------------


def _limited(text: str, **limits: int) -> list[str]:
    with pytest.raises(RuleFileError) as caught:
        load_rules_text(text, "r.yaml", limits=Limits(**limits))
    return [str(error) for error in caught.value.errors]


def test_too_many_rules_are_refused_before_any_is_checked() -> None:
    rules = "".join(f"  - {{id: r{i}, when: 'x >'}}\n" for i in range(51))
    assert _limited("rules:\n" + rules, max_rules=50) == [
        "r.yaml:2:3: the file has 51 rules; a rule file may have 50; split the rules into "
        "several files in one folder"
    ]


def test_the_files_syntax_nodes_are_budgeted_and_checking_stops_there() -> None:
    # Each condition is 7 nodes (and, 2 comparisons of 2 operands): the 4th passes 25.
    rules = "".join(f"  - id: r{i}\n    when: x > {i} and y < 3\n" for i in range(6))
    rules += "  - id: bad\n    when: 'x >'\n"
    errors = _limited("rules:\n" + rules, max_file_nodes=25)
    assert errors == [
        "r.yaml:9:11: the file's conditions and parameters have more than 25 syntax nodes in "
        "all; the limit was passed here; split the rules into several files, or use long "
        "lists in fewer rules"
    ]


def test_each_use_of_a_long_var_counts_against_the_file() -> None:
    items = ", ".join(f"u{i}" for i in range(1_000))
    rules = "".join(f"  - id: r{i}\n    when: owner in big\n" for i in range(3))
    errors = _limited(f"vars:\n  big: [{items}]\nrules:\n{rules}", max_file_constant_items=2_500)
    assert len(errors) == 1
    assert errors[0].startswith("r.yaml:9:11: the file's expressions use more than 2,500 ")


def test_the_documented_limits_are_the_defaults() -> None:
    docs = (Path(__file__).parents[3] / "docs" / "rules.md").read_text(encoding="utf-8")
    documented = dict(re.findall(r"^\| `(max_\w+)` \| ([\d,]+) \|", docs, flags=re.MULTILINE))
    defaults = {**vars(YamlLimits()), **vars(Limits())}
    for name in ("max_bytes", "max_expanded_bytes", "max_rules", "max_file_nodes"):
        assert int(documented[name].replace(",", "")) == defaults[name], name
    assert (
        int(documented["max_file_constant_items"].replace(",", ""))
        == (defaults["max_file_constant_items"])
    )
