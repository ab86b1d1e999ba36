"""Collectors that turn billing exports, inventories, metrics and AWS into per-resource facts.

In memory: ``collect_facts(billing, inventory, utilization)`` → ``Collection(facts, report)``.
Stored: ``collect_into(engine, …)`` then ``load_facts(engine)`` for the newest collection.
"""

from reclaim.ingest.aws import collect_aws, read_aws
from reclaim.ingest.collector import Collection, build_facts, collect_facts
from reclaim.ingest.facts import (
    FACT_COLUMNS,
    FACT_SCHEMA,
    FACTS,
    FIELD_TYPES,
    KINDS,
    Fact,
    conform_facts,
    empty_facts,
    read_facts_parquet,
    validate_facts,
    write_facts_parquet,
)
from reclaim.ingest.focus import OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from reclaim.ingest.ledger import (
    FACTS_VERSION,
    ImportedFile,
    StoredCollection,
    collect_into,
    imported_files,
    latest_collection,
    list_collections,
    load_facts,
    save_collection,
)
from reclaim.ingest.report import BadRow, CollectReport, FileReport
from reclaim.ingest.sample import (
    BUNDLED_SAMPLE,
    SAMPLE_END,
    SampleFiles,
    bundled_sample,
    generate_sample,
)

__all__ = [
    "BUNDLED_SAMPLE",
    "FACTS",
    "FACTS_VERSION",
    "FACT_COLUMNS",
    "FACT_SCHEMA",
    "FIELD_TYPES",
    "KINDS",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "SAMPLE_END",
    "BadRow",
    "CollectReport",
    "Collection",
    "Fact",
    "FileReport",
    "ImportedFile",
    "SampleFiles",
    "StoredCollection",
    "build_facts",
    "bundled_sample",
    "collect_aws",
    "collect_facts",
    "collect_into",
    "conform_facts",
    "empty_facts",
    "generate_sample",
    "imported_files",
    "latest_collection",
    "list_collections",
    "load_facts",
    "read_aws",
    "read_facts_parquet",
    "save_collection",
    "validate_facts",
    "write_facts_parquet",
]
