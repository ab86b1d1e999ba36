"""FactSchema: declaring fields, nested maps and type names."""

from __future__ import annotations

import pytest

from reclaim.rules.expression import ExpressionError, FactSchema, FieldType


def test_from_mapping_accepts_names_aliases_enums_and_nested_maps() -> None:
    schema = FactSchema.from_mapping(
        {
            "cpu": "number",
            "count": "int",
            "name": FieldType.STRING,
            "seen": "timestamp",
            "tags": {"owner": "string"},
        }
    )
    assert schema.names == frozenset({"cpu", "count", "name", "seen", "tags"})
    tags = schema.get("tags")
    assert tags is not None
    assert tags.type is FieldType.MAP
    assert tags.schema is not None
    assert tags.schema.get("owner") is not None
    assert schema.to_mapping() == {
        "cpu": "number",
        "count": "integer",
        "name": "string",
        "seen": "datetime",
        "tags": {"owner": "string"},
    }
    assert FactSchema.from_mapping(schema.to_mapping()) == schema


def test_unknown_type_names_suggest_the_closest() -> None:
    with pytest.raises(ExpressionError, match="field 'cpu': unknown type 'nubmer'; did you mean"):
        FactSchema.from_mapping({"cpu": "nubmer"})
    with pytest.raises(ExpressionError, match=r"field 'tags\.owner': unknown type"):
        FactSchema.from_mapping({"tags": {"owner": "strang"}})


def test_suggest_finds_close_names() -> None:
    schema = FactSchema.from_mapping({"cpu_avg": "number"})
    assert schema.suggest("cpu_avgg") == "cpu_avg"
    assert schema.suggest("zzz") is None
    assert "cpu_avg" in schema
    assert len(schema) == 1


def test_from_polars_reads_a_frame_schema() -> None:
    import datetime

    import polars as pl

    frame = pl.DataFrame(
        {
            "cpu": [1.5],
            "count": [3],
            "name": ["a"],
            "on": [True],
            "seen": [datetime.datetime(2024, 1, 1)],
            "items": [["x"]],
            "tags": [{"owner": "ann", "size": 2}],
        }
    )
    schema = FactSchema.from_polars(frame.schema)
    assert schema.to_mapping() == {
        "cpu": "number",
        "count": "integer",
        "name": "string",
        "on": "boolean",
        "seen": "datetime",
        "items": "list",
        "tags": {"owner": "string", "size": "integer"},
    }
