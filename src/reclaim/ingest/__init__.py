"""Collectors that turn billing exports, inventories, metrics and AWS into per-resource facts."""

from reclaim.ingest.facts import (
    FACT_COLUMNS,
    FACT_SCHEMA,
    FIELD_TYPES,
    KINDS,
    Fact,
    conform_facts,
    empty_facts,
    validate_facts,
)

__all__ = [
    "FACT_COLUMNS",
    "FACT_SCHEMA",
    "FIELD_TYPES",
    "KINDS",
    "Fact",
    "conform_facts",
    "empty_facts",
    "validate_facts",
]
