from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from reclaim.errors import ConfigError
from reclaim.ingest import (
    FACT_COLUMNS,
    FACT_SCHEMA,
    FIELD_TYPES,
    conform_facts,
    empty_facts,
    validate_facts,
)

RULE_FIELD_TYPES = {"number", "integer", "string", "boolean", "datetime", "map", "list"}


def test_every_column_has_a_dtype_and_a_rules_field_type() -> None:
    assert list(FACT_SCHEMA) == list(FACT_COLUMNS) == list(FIELD_TYPES)
    assert set(FIELD_TYPES.values()) <= RULE_FIELD_TYPES
    assert len(set(FACT_COLUMNS)) == len(FACT_COLUMNS)


@pytest.mark.parametrize(
    "needed",
    [
        # the columns the twelve built-in savings rules select on
        "cpu_p95", "mem_p95", "network_avg", "size_down", "size_down_ratio", "attached",
        "days_since_attached", "age_days", "used_by_image", "kind", "requests_sum",
        "target_count", "volume_type", "size_gb", "previous_generation", "state",
        "days_in_state", "attached_volume_count", "connections_max", "tags", "owner",
        "lifecycle_policy", "cost_30d", "billed_cost_30d", "list_cost_30d",
    ],
)  # fmt: skip
def test_rule_facts_are_columns(needed: str) -> None:
    assert needed in FACT_SCHEMA


def test_empty_facts_validates() -> None:
    validate_facts(empty_facts())


def test_conform_adds_missing_columns_and_keeps_tag_fields() -> None:
    frame = pl.DataFrame(
        {
            "resource_id": ["i-1", "i-2"],
            "cost_30d": [1, 2],
            "tags": [{"team": "a", "env": None}, {"team": None, "env": "prod"}],
            "extra": [1, 2],
            "as_of": [datetime(2026, 1, 1, tzinfo=UTC)] * 2,
        }
    )
    facts = conform_facts(frame).collect()
    validate_facts(facts)
    assert facts.columns == list(FACT_COLUMNS)
    assert facts["cost_30d"].to_list() == [1.0, 2.0]
    assert facts["tags"].struct.field("env").to_list() == [None, "prod"]
    assert facts["cpu_avg"].null_count() == 2


def test_validate_names_the_bad_column() -> None:
    facts = empty_facts().with_columns(pl.col("cost_30d").cast(pl.String))
    with pytest.raises(ConfigError, match="cost_30d"):
        validate_facts(facts)
    with pytest.raises(ConfigError, match="lacks column 'owner'"):
        validate_facts(empty_facts().drop("owner"))


def test_validate_rejects_duplicate_resources() -> None:
    facts = conform_facts(pl.DataFrame({"resource_id": ["a", "a"]})).collect()
    with pytest.raises(ConfigError, match="more than one row"):
        validate_facts(facts)
