from __future__ import annotations

import polars as pl

from reclaim.ingest.tags import decode_tags

VALID = [
    '{"Owner": "a", "n": 1, "on": true, "f": 1.5}',
    '{"user:team": "search", "env": "prod"}',
    '{"owner": "", "team": "t"}',
    "{}",
    None,
]


def test_fast_and_general_decoders_agree() -> None:
    fast, unreadable = decode_tags(pl.Series(VALID, dtype=pl.String))
    # One value that is not JSON sends every value through json.loads.
    general, unreadable_general = decode_tags(pl.Series([*VALID, "owner=x"], dtype=pl.String))
    assert (unreadable, unreadable_general) == (0, 1)
    assert general.head(len(VALID)).to_dicts() == fast.to_dicts()
    assert general.row(len(VALID), named=True) == {"tags": None, "tag_count": 0, "owner": None}
    rows = fast.to_dicts()
    assert rows[0]["tags"] == {
        "Owner": "a", "n": "1", "on": "true", "f": "1.5",
        "env": None, "owner": None, "team": None, "user:team": None,
    }  # fmt: skip
    assert [row["owner"] for row in rows] == ["a", "search", "t", None, None]
    assert [row["tag_count"] for row in rows] == [4, 2, 1, 0, 0]


def test_nested_values_and_key_value_lists() -> None:
    frame, unreadable = decode_tags(
        pl.Series(['{"a": {"b": 1}}', '[{"Key": "Team", "Value": "ml"}]'], dtype=pl.String)
    )
    assert unreadable == 0
    assert frame["tags"].to_list() == [{"a": '{"b": 1}', "Team": None}, {"a": None, "Team": "ml"}]
    assert frame["owner"].to_list() == [None, "ml"]


def test_tag_fields_are_sorted_by_key_on_both_paths() -> None:
    for values in (['{"b": "1", "a": "2"}', None], ['{"b": "1", "a": "2"}', "bad"]):
        frame, _ = decode_tags(pl.Series(values, dtype=pl.String))
        dtype = frame.schema["tags"]
        assert isinstance(dtype, pl.Struct)
        assert [field.name for field in dtype.fields] == ["a", "b"]
        assert frame["tags"][0] == {"a": "2", "b": "1"}
        assert frame["tags"][1] is None
