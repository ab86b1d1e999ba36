"""The C (libyaml) and pure-Python (ruamel.yaml) readers build the same document.

Rule files are read by libyaml's parser for speed; ruamel.yaml reads any file libyaml refuses
or that carries a ``%`` directive. Both must give the same values and the same positions, or
an error would point elsewhere (or a value differ) depending on what is installed.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ruamel.yaml import YAML

from reclaim.rules import source
from reclaim.rules.errors import YamlSyntaxError
from reclaim.rules.source import DEFAULT_YAML_LIMITS, YamlDocument, load_yaml

pytestmark = pytest.mark.skipif(
    source._CParser is None, reason="PyYAML is installed without libyaml: only ruamel reads"
)

SRC = Path(__file__).resolve().parents[3] / "src"

TRICKY = [
    "a: yes\nb: no\nc: on\nd: ~\ne: .inf\nf: -.nan\ng: 0o17\nh: 0x1F\ni: 1_000\nj: 010\n",
    "when: 2024-01-02\nat: 2024-01-02T03:04:05Z\nplain: 2024-1-2x\n",
    "base: &b {x: 1, y: [1, 2]}\nuse:\n  <<: *b\n  y: 3\nlist: [*b, *b]\n'<<': quoted\n",
    "block: |\n  line one\n    indented\n  end\nfolded: >-\n  one\n  two\n\n  three\n",
    "multi: this plain\n  scalar spans\n  three lines\nq: 'it''s'\n"
    'd: "tab\\tnew\\nline \\u00e9"\n',
    "é: ünïcode ✓\nrules:\n  - {id: x, when: \"name == 'é'\"}\n"
    "  - id: y\n    when: >\n      a and\n      b\n",
    "empty:\nnull_list: [~, null, '', \"\"]\nnested: [[1, [2, [3]]], {k: {k: {k: v}}}]\n",
    "rules:\n- id: a\n  when: x > 1 # a comment\n- id: b # another\n  when: 'y'\n",
    'key with spaces: 1\n? complex\n: value\n"quoted key": 2\n1: int key\nfalse: bool key\n',
]


def _both(text: str) -> tuple[YamlDocument, YamlDocument]:
    fast = load_yaml(text, "f.yaml")
    slow = source._read_with_ruamel("f.yaml", text, DEFAULT_YAML_LIMITS)
    return fast, slow


def _assert_same(fast: YamlDocument, slow: YamlDocument) -> None:
    assert repr(fast.data) == repr(slow.data)  # repr: NaN != NaN, and types must match too
    assert fast.key_positions == slow.key_positions
    # The one known difference: libyaml places an empty value just after its "key:",
    # ruamel.yaml at the next token (often the next line). Both name the key's neighbourhood.
    empty = {path for path, value in _leaves(fast.data) if value is None}
    assert {p: v for p, v in fast.value_positions.items() if p not in empty} == {
        p: v for p, v in slow.value_positions.items() if p not in empty
    }


def _leaves(
    value: object, path: tuple[object, ...] = ()
) -> list[tuple[tuple[object, ...], object]]:
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in _leaves(item, (*path, key))]
    if isinstance(value, list):
        return [leaf for index, item in enumerate(value) for leaf in _leaves(item, (*path, index))]
    return [(path, value)]


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_documents_read_alike(text: str) -> None:
    _assert_same(*_both(text))


@pytest.mark.parametrize(
    "path",
    sorted(SRC.rglob("*.yaml")),
    ids=lambda path: str(path.relative_to(SRC)),
)
def test_shipped_yaml_files_read_alike(path: Path) -> None:
    _assert_same(*_both(path.read_text(encoding="utf-8")))


def test_a_valid_file_is_read_without_the_pure_python_parser(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("ruamel.yaml's pure-Python parser was used")

    monkeypatch.setattr(YAML, "parse", refuse)
    document = load_yaml("rules:\n  - id: a\n    when: x > 1\n", "f.yaml")
    assert document.data == {"rules": [{"id": "a", "when": "x > 1"}]}


def test_a_syntax_error_is_reported_by_ruamel_with_its_position() -> None:
    with pytest.raises(YamlSyntaxError) as caught:
        load_yaml("rules:\n  - id: a\n   when: [x\n", "bad.yaml")
    message = str(caught.value)
    assert "bad.yaml:" in message
    assert message == str(_ruamel_error("rules:\n  - id: a\n   when: [x\n"))


def _ruamel_error(text: str) -> YamlSyntaxError:
    with pytest.raises(YamlSyntaxError) as caught:
        source._read_with_ruamel("bad.yaml", text, DEFAULT_YAML_LIMITS)
    return caught.value


def test_a_version_directive_is_read_by_ruamel() -> None:
    # %YAML 1.1 makes ruamel.yaml resolve "yes" as true; libyaml's events cannot say so.
    document = load_yaml("%YAML 1.1\n---\na: yes\n", "f.yaml")
    assert (
        document.data
        == source._read_with_ruamel("f.yaml", "%YAML 1.1\n---\na: yes\n", DEFAULT_YAML_LIMITS).data
    )


_SCALARS = st.one_of(
    st.sampled_from(["yes", "No", "~", "null", "1e3", "0x10", "-0", ".5", "2024-01-01", "<<"]),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=8),
    st.integers(),
    st.floats(allow_nan=False),
)


@given(
    st.recursive(
        _SCALARS,
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.text("abcxyz", min_size=1, max_size=3), inner, max_size=3)
        ),
        max_leaves=12,
    ),
    st.sampled_from([None, False, True]),
)
def test_any_dumped_document_reads_alike(value: object, flow: bool | None) -> None:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = flow

    stream = io.StringIO()
    yaml.dump({"root": value}, stream)
    text = stream.getvalue()
    try:
        slow = source._read_with_ruamel("f.yaml", text, DEFAULT_YAML_LIMITS)
    except YamlSyntaxError as exc:
        refused = str(exc)
    else:
        _assert_same(load_yaml(text, "f.yaml"), slow)
        return
    with pytest.raises(YamlSyntaxError) as caught:
        load_yaml(text, "f.yaml")
    assert str(caught.value) == refused
